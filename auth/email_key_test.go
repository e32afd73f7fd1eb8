package auth_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/walletauth/walletauth/api/apitest"
)

// Emails are one account however their case and Unicode normalisation are
// spelt, on every database: "Ärger@x.org" signs up, logs in as
// "ärger@x.org" and as its NFD spelling, and no other spelling can sign up
// again or be added to another account. The email shown is the one typed.
func TestEmailComparedCaseAndNormalisationFree(t *testing.T) {
	const (
		typed = "Ärger@x.org"
		lower = "ärger@x.org"
		nfd   = "A\u0308rger@x.org"
		pw    = "correct horse battery staple"
	)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": typed, "password": pw}, "")
			if rec.Code != http.StatusCreated {
				t.Fatalf("signup: %d %s", rec.Code, rec.Body)
			}
			var first apitest.Login
			if err := json.Unmarshal(rec.Body.Bytes(), &first); err != nil {
				t.Fatal(err)
			}
			if first.User.Email == nil || *first.User.Email != typed {
				t.Fatalf("signup email = %v, want %q", first.User.Email, typed)
			}
			for _, as := range []string{typed, lower, nfd, "ÄRGER@X.ORG", " ärger@x.org "} {
				rec := e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": as, "password": pw}, "")
				if rec.Code != http.StatusOK {
					t.Fatalf("login as %q: %d %s", as, rec.Code, rec.Body)
				}
				if got := apitest.DecodeOK[apitest.Login](t, rec); got.User.ID != first.User.ID {
					t.Fatalf("login as %q: user %s, want %s", as, got.User.ID, first.User.ID)
				}
			}
			for _, again := range []string{typed, lower, nfd, "ÄRGER@x.org"} {
				rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": again, "password": pw}, "")
				apitest.WantError(t, rec, http.StatusConflict, "email_taken")
			}
			other := e.mustLogin(t, newSigner(t))
			rec = e.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": lower, "password": pw}, other.AuthToken)
			apitest.WantError(t, rec, http.StatusConflict, "email_taken")
			// An email typed in NFD is kept as typed, in NFC.
			rec = e.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": "Zo\u0308e@x.org", "password": pw}, other.AuthToken)
			if got := apitest.DecodeOK[apitest.User](t, rec); got.Email == nil || *got.Email != "Zöe@x.org" {
				t.Fatalf("added email = %v, want %q", got.Email, "Zöe@x.org")
			}
		})
	}
}
