package storage_test

import (
	"testing"

	"github.com/walletauth/walletauth/storage"
)

func TestEmailKey(t *testing.T) {
	same := [][]string{
		{"Ärger@x.org", "ärger@x.org", "A\u0308rger@x.org", "a\u0308rger@X.ORG", "ÄRGER@x.org"},
		{"straße@x.org", "STRASSE@x.org", "strasse@x.org", "STRAẞE@x.org"},
		{"Kelvin@x.org", "\u212Aelvin@x.org"}, // KELVIN SIGN folds to k
		{"ǅemal@x.org", "ǆemal@x.org", "Ǆemal@x.org"},
	}
	for _, group := range same {
		want := storage.EmailKey(group[0])
		for _, s := range group[1:] {
			if got := storage.EmailKey(s); got != want {
				t.Errorf("EmailKey(%+q) = %+q, want %+q (as %+q)", s, got, want, group[0])
			}
		}
		if again := storage.EmailKey(want); again != want {
			t.Errorf("EmailKey is not idempotent on %+q: %+q", want, again)
		}
	}
	// The ASCII shortcut agrees with the full computation.
	for _, s := range []string{"Alice.Smith+Tag@Example.COM", "k@K.org", "0-9_~!#$%&'*/=?^`{|}@x.org"} {
		if got, full := storage.EmailKey(s), storage.EmailKey(s + "é")[:len(s)]; got != full {
			t.Errorf("EmailKey(%q) = %q, the full fold gives %q", s, got, full)
		}
	}
	for _, pair := range [][2]string{
		{"arger@x.org", "ärger@x.org"},
		{"bob@x.org", "bob@x.org.evil"},
		{"i@x.org", "ı@x.org"}, // dotless i is another letter under full (non-Turkic) folding
	} {
		if storage.EmailKey(pair[0]) == storage.EmailKey(pair[1]) {
			t.Errorf("EmailKey(%+q) == EmailKey(%+q), want different", pair[0], pair[1])
		}
	}
}

func BenchmarkEmailKey(b *testing.B) {
	for _, s := range []string{"alice.smith@example.com", "A\u0308rger.Straße@beispiel.de"} {
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				_ = storage.EmailKey(s)
			}
		})
	}
}
