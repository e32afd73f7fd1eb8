package users_test

import (
	"testing"

	"github.com/walletauth/walletauth/users"
)

func TestEmailKey(t *testing.T) {
	nfc := "\u00c4rger@x.org"  // Ä precomposed
	nfd := "A\u0308rger@x.org" // A + combining diaeresis
	same := []string{nfc, nfd, "\u00e4rger@x.org", "a\u0308rger@X.ORG", "  \u00c4RGER@x.org "}
	want := users.EmailKey(same[0])
	if want != "\u00e4rger@x.org" {
		t.Errorf("EmailKey(%q) = %q, want NFC lower case", same[0], want)
	}
	for _, s := range same[1:] {
		if got := users.EmailKey(s); got != want {
			t.Errorf("EmailKey(%q) = %q, want %q", s, got, want)
		}
	}
	// Full case folding, not just lower-casing: ß and SS are one.
	if users.EmailKey("STRASSE@x.org") != users.EmailKey("straße@x.org") {
		t.Error("ß and SS differ")
	}
	if users.EmailKey("a@x.org") == users.EmailKey("b@x.org") {
		t.Error("different addresses share a key")
	}
}
