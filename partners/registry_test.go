package partners_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":      "https://app.example.com:443",
		"https://app.example.com:443":  "https://app.example.com:443",
		"https://app.example.com/":     "https://app.example.com:443",
		"HTTPS://App.Example.COM":      "https://app.example.com:443",
		"http://app.example.com":       "http://app.example.com:80",
		"http://localhost:3000":        "http://localhost:3000",
		"https://app.example.com:8443": "https://app.example.com:8443",
		"http://[::1]:8080":            "http://[::1]:8080",
	} {
		got, err := partners.NormalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "null", "app.example.com", "ftp://app.example.com", "https://app.example.com/path",
		"https://user@app.example.com", "https://app.example.com?x=1", "https://app.example.com#f", "https://", "*"} {
		if got, err := partners.NormalizeOrigin(in); err == nil {
			t.Errorf("%q: accepted as %q", in, got)
		}
	}
}

func TestParseKeyring(t *testing.T) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(k),
		base64.RawURLEncoding.EncodeToString(k),
		hex.EncodeToString(k),
		" " + hex.EncodeToString(k) + " , " + base64.StdEncoding.EncodeToString(k),
	} {
		kr, err := partners.ParseKeyring(s)
		if err != nil || !kr.Sealed() {
			t.Errorf("%q: %v", s, err)
		}
	}
	if kr, err := partners.ParseKeyring(""); err != nil || kr.Sealed() {
		t.Fatalf("empty: %v", err)
	}
	for _, s := range []string{"short", base64.StdEncoding.EncodeToString(k[:16]), hex.EncodeToString(k) + "00"} {
		if _, err := partners.ParseKeyring(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestRegistry(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		e := newEnv(t, db)

		t.Run("create and list", func(t *testing.T) {
			p, secret, err := e.reg.Create(ctx, partners.NewPartner{Name: " Shop ", ClientLogin: true, SignedRequests: true,
				Origins: []string{"https://shop.example", "https://shop.example:443", "http://localhost:5173"}})
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^pt_[a-z2-7]{16}$`).MatchString(p.ID) || !strings.HasPrefix(secret, "pts_") || len(secret) != 4+43 {
				t.Fatalf("id %q secret %q", p.ID, secret)
			}
			if got := p.OriginList(); len(got) != 2 || got[0] != "https://shop.example:443" {
				t.Fatalf("origins %v", got)
			}
			ps, err := e.reg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var found *partners.Partner
			for i := range ps {
				if ps[i].ID == p.ID {
					found = &ps[i]
				}
			}
			if found == nil || found.Name != "Shop" || !found.ClientLogin || !found.SignedRequests || found.Disabled {
				t.Fatalf("listed %+v", found)
			}
			for _, bad := range []partners.NewPartner{{Name: ""}, {Name: "x", Origins: []string{"https://a.example/path"}}} {
				if _, _, err := e.reg.Create(ctx, bad); err == nil {
					t.Errorf("%+v accepted", bad)
				}
			}
			if _, err := e.reg.RotateSecret(ctx, "pt_nosuch"); !errors.Is(err, partners.ErrPartnerNotFound) {
				t.Fatalf("rotate unknown: %v", err)
			}
			if err := e.reg.Disable(ctx, "pt_nosuch"); !errors.Is(err, partners.ErrPartnerNotFound) {
				t.Fatalf("disable unknown: %v", err)
			}
		})

		t.Run("the database holds neither the secret nor the key in the clear", func(t *testing.T) {
			p, secret, err := e.reg.Create(ctx, partners.NewPartner{Name: "Sealed"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.reg.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, col := range [][]byte{got.SecretHash, got.SigningKey} {
				if bytes.Contains(col, []byte(secret)) || bytes.Contains(col, []byte(secret[4:])) {
					t.Fatal("a column holds the secret")
				}
			}
			key, err := e.reg.SigningKey(got)
			if err != nil || string(key) != secret {
				t.Fatalf("signing key %q, %v", key, err)
			}
			// A sealed key moved to another partner's row does not open.
			other, _, err := e.reg.Create(ctx, partners.NewPartner{Name: "Other"})
			if err != nil {
				t.Fatal(err)
			}
			other.SigningKey = got.SigningKey
			if _, err := e.reg.SigningKey(other); err == nil {
				t.Fatal("a sealed key opened for another partner")
			}
		})
	})
}

// TestKeyringLifecycle runs a partner through the server key's life:
// created with no key (unsealed), sealed once a key is configured, moved to
// a new key, and refused (401, never accepted) where its key is missing.
func TestKeyringLifecycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		plain, err := partners.NewKeyring()
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db, withKeyring(plain))
		p := e.createPartner(partners.NewPartner{Name: "Early"})
		wantOK(t, e.signed(p, http.MethodGet, listPath, nil)) // HS256 works unsealed
		if n, _, err := e.reg.Reseal(ctx); err != nil || n != 0 {
			t.Fatalf("reseal with no key: %d %v", n, err)
		}

		k1, k2 := randomKey(t), randomKey(t)
		e1 := newEnv(t, db, withKeyring(mustParse(t, k1)))
		if n, bad, err := e1.reg.Reseal(ctx); err != nil || n < 1 || bad != 0 {
			t.Fatalf("reseal under k1: %d %d %v", n, bad, err)
		}
		row, err := e1.reg.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(row.SigningKey, []byte(p.Secret)) {
			t.Fatal("still unsealed after Reseal")
		}
		wantOK(t, e1.signed(p, http.MethodGet, listPath, nil))
		if n, _, _ := e1.reg.Reseal(ctx); n != 0 {
			t.Fatalf("a second reseal rewrote %d", n)
		}

		// Rotation of the server key: k2 seals, k1 still opens.
		e2 := newEnv(t, db, withKeyring(mustParse(t, k2+","+k1)))
		wantOK(t, e2.signed(p, http.MethodGet, listPath, nil))
		if n, _, err := e2.reg.Reseal(ctx); err != nil || n < 1 {
			t.Fatalf("reseal under k2: %d %v", n, err)
		}
		// Now only k2 opens it: an instance with k1 alone cannot verify JWTs
		// (a configuration fault: 401 request_signature_invalid, never an accept), the plain secret
		// still works.
		eOld := newEnv(t, db, withKeyring(mustParse(t, k1)))
		wantError(t, eOld.signed(p, http.MethodGet, listPath, nil), 401, "request_signature_invalid")
		wantOK(t, eOld.withSecret(p, http.MethodGet, listPath, nil))
		eNew := newEnv(t, db, withKeyring(mustParse(t, k2)))
		wantOK(t, eNew.signed(p, http.MethodGet, listPath, nil))
		if _, bad, _ := eOld.reg.Reseal(ctx); bad < 1 {
			t.Fatal("Reseal must report keys it cannot open")
		}
	})
}

func randomKey(tb testing.TB) string {
	tb.Helper()
	k := make([]byte, partners.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func mustParse(tb testing.TB, s string) *partners.Keyring {
	tb.Helper()
	kr, err := partners.ParseKeyring(s)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
