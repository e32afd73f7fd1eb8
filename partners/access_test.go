package partners_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

func accessClaims(t *testing.T, tok any) map[string]any {
	t.Helper()
	s, _ := tok.(string)
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("access_token %q is not a JWT", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The partner login and the login-code exchange answer an access token of
// their session (amr partner, login_code); tokens/verify accepts it,
// adding session_id, with its exp as expires_at, until the session ends.
func TestPartnerLoginsCarryAccessTokens(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) { partnerLoginsCarryAccessTokens(t, newEnv(t, db)) })
}

func partnerLoginsCarryAccessTokens(t *testing.T, e *env) {
	a := e.createPartner(partners.NewPartner{Name: "A"})
	rec := e.withSecret(a, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "x1"})
	r := wantOK(t, rec)
	if r["token_type"] != "Bearer" || r["expires_in"] != float64(15*60) || rec.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("login answer %s %v", rec.Body, rec.Header)
	}
	c := accessClaims(t, r["access_token"])
	if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "partner" || c["sub"] != userOf(t, r)["id"] {
		t.Fatalf("claims %v", c)
	}
	verify := func(tok any) map[string]any {
		return wantOK(t, e.signed(a, http.MethodPost, verifyPath, map[string]any{"token": tok}))
	}
	v := verify(r["access_token"])
	exp, err := time.Parse(time.RFC3339, v["expires_at"].(string))
	if v["active"] != true || v["session_id"] != c["sid"] || err != nil || exp.Unix() != int64(c["exp"].(float64)) || v["external_id"] != "x1" {
		t.Fatalf("verify access token: %v", v)
	}
	if v := verify(r["auth_token"]); v["active"] != true || v["session_id"] != c["sid"] {
		t.Fatalf("verify auth token: %v", v)
	}

	rec = e.do(http.MethodPost, "/v1/auth/code", marshal(t, map[string]any{"login_code": r["login_code"]}), map[string]string{"User-Agent": "WebView/2"})
	code := wantOK(t, rec)
	cc := accessClaims(t, code["access_token"])
	if amr, _ := cc["amr"].([]any); len(amr) != 1 || amr[0] != "login_code" || cc["sid"] == c["sid"] ||
		code["token_type"] != "Bearer" || rec.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("code exchange %s %v", rec.Body, rec.Header)
	}
	if v := verify(code["access_token"]); v["active"] != true || v["session_id"] != cc["sid"] {
		t.Fatalf("verify code session: %v", v)
	}

	// The session ends: its access token is inactive at once.
	if err := e.sessions.Revoke(t.Context(), r["auth_token"].(string)); err != nil {
		t.Fatal(err)
	}
	if v := verify(r["access_token"]); v["active"] != false || len(v) != 1 {
		t.Fatalf("after revoke: %v", v)
	}
	if v := verify(code["access_token"]); v["active"] != true {
		t.Fatalf("the other session: %v", v)
	}
	// A forged one is inactive.
	if v := verify(code["access_token"].(string) + "x"); v["active"] != false {
		t.Fatalf("forged: %v", v)
	}
}
