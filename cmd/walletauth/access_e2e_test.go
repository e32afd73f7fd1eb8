package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// atRotationBound is how soon a rotation must sign on every instance (the
// contract's "within one second"), with room for a loaded test machine.
const atRotationBound = 2 * time.Second

type atLogin struct {
	AuthToken   string `json:"auth_token"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	User        struct {
		ID string `json:"id"`
	} `json:"user"`
}

type atKey struct {
	KID     string     `json:"kid"`
	Created time.Time  `json:"created"`
	Current bool       `json:"current"`
	Retired *time.Time `json:"retired"`
}

func atKID(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatalf("header of %q: %v", tok, err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func atJWKSKids(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []struct{ Kid string } }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// freePort returns a loopback port free a moment ago: the issuer (the
// origin of SIWE_URI) must be the server's real address for a verifier to
// follow the discovery document to the JWKS.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The real server: an email sign-up's access token verifies with go-oidc
// pointed at the server's discovery document; it works on /v1/users/me
// until logout; `walletauth keys list|rotate` manage the keys, a rotation
// is in the JWKS at once and signs new logins within the bound, and a
// token of the old key still verifies (go-oidc refetches the JWKS).
func TestAccessTokensEndToEnd(t *testing.T) {
	addr := freePort(t)
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "at.db")
	s := startServer(t, "HTTP_ADDR", addr, "DATABASE_URL", dbURL, "SIGNUP_PER_IP", "0")
	ctx := context.Background()
	if s.base != "http://"+addr {
		t.Fatalf("listening on %s, want %s", s.base, addr)
	}

	var up atLogin
	if code := s.call(t, http.MethodPost, "/v1/auth/email/signup", "", map[string]string{"email": "at@example.com", "password": "kiwi-Lantern-42-orbit"}, &up); code != http.StatusCreated {
		t.Fatalf("signup: %d", code)
	}
	if up.TokenType != "Bearer" || up.ExpiresIn != 900 || up.AccessToken == "" {
		t.Fatalf("signup answer %+v", up)
	}
	p, err := oidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatalf("go-oidc discovery at %s: %v", s.base, err)
	}
	verifier := p.Verifier(&oidc.Config{ClientID: "walletauth"})
	idt, err := verifier.Verify(ctx, up.AccessToken)
	if err != nil {
		t.Fatalf("go-oidc refused the sign-up's access token: %v", err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified *bool    `json:"email_verified"`
		AMR           []string `json:"amr"`
		SID           string   `json:"sid"`
		Role          string   `json:"role"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != up.User.ID || idt.Issuer != s.base || claims.Email != "at@example.com" || claims.EmailVerified == nil ||
		len(claims.AMR) != 1 || claims.AMR[0] != "email" || claims.SID == "" || claims.Role != "authenticated" {
		t.Fatalf("token %+v, claims %+v", idt, claims)
	}
	var me struct{ ID string }
	if code := s.call(t, http.MethodGet, "/v1/users/me", up.AccessToken, nil, &me); code != http.StatusOK || me.ID != up.User.ID {
		t.Fatalf("me with the access token: %d %+v", code, me)
	}

	env := mapEnv(map[string]string{"WALLETAUTH_DATABASE_URL": dbURL, "WALLETAUTH_HTTP_ADDR": addr})
	runKeys := func(args ...string) []byte {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, append([]string{"keys"}, args...), env, &out, &errOut); err != nil {
			t.Fatalf("keys %v: %v\n%s", args, err, errOut.String())
		}
		return out.Bytes()
	}
	var list struct{ Keys []atKey }
	if err := json.Unmarshal(runKeys("list", "--json"), &list); err != nil {
		t.Fatal(err)
	}
	first := atKID(t, up.AccessToken)
	if len(list.Keys) != 1 || list.Keys[0].KID != first || !list.Keys[0].Current || list.Keys[0].Retired != nil {
		t.Fatalf("keys list %+v, token kid %s", list, first)
	}
	if text := string(runKeys("list")); !strings.Contains(text, "KID") || !strings.Contains(text, first) || strings.Contains(text, "\"d\"") {
		t.Fatalf("keys list:\n%s", text)
	}
	var rotated atKey
	if err := json.Unmarshal(runKeys("rotate", "--json"), &rotated); err != nil {
		t.Fatal(err)
	}
	rotatedAt := time.Now()
	if kids := atJWKSKids(t, s.base); len(kids) != 2 || kids[0] != rotated.KID || kids[1] != first {
		t.Fatalf("JWKS right after the rotation: %v, want [%s %s]", kids, rotated.KID, first)
	}
	for {
		var l atLogin
		if code := s.call(t, http.MethodPost, "/v1/auth/email/login", "", map[string]string{"email": "at@example.com", "password": "kiwi-Lantern-42-orbit"}, &l); code != http.StatusOK {
			t.Fatalf("login: %d", code)
		}
		if atKID(t, l.AccessToken) == rotated.KID {
			t.Logf("new key signing %v after the rotation", time.Since(rotatedAt).Round(time.Millisecond))
			if _, err := verifier.Verify(ctx, l.AccessToken); err != nil {
				t.Fatalf("go-oidc refused a token of the new key: %v", err)
			}
			break
		}
		if time.Since(rotatedAt) > atRotationBound {
			t.Fatalf("still signing with %s %v after the rotation", atKID(t, l.AccessToken), atRotationBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := verifier.Verify(ctx, up.AccessToken); err != nil {
		t.Fatalf("a token of the retired key: %v", err)
	}
	if err := json.Unmarshal(runKeys("list", "--json"), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Keys) != 2 || !list.Keys[0].Current || list.Keys[1].Current || list.Keys[1].Retired == nil {
		t.Fatalf("keys list after the rotation: %+v", list)
	}

	// POST /v1/auth/token, then logout: every token of the session stops.
	var fresh atLogin
	if code := s.call(t, http.MethodPost, "/v1/auth/token", up.AuthToken, nil, &fresh); code != http.StatusOK || atKID(t, fresh.AccessToken) != rotated.KID {
		t.Fatalf("token: %d %+v", code, fresh)
	}
	if code := s.call(t, http.MethodPost, "/v1/auth/logout", fresh.AccessToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	for _, tok := range []string{up.AccessToken, fresh.AccessToken, up.AuthToken} {
		if code := s.call(t, http.MethodGet, "/v1/users/me", tok, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("after logout: %d", code)
		}
	}
}

// Two server processes on one PostgreSQL and one Redis: an access token
// issued by A works on B and stops on B at once when A logs it out; a
// rotation by the CLI is in both JWKS at once and signs on both within the
// bound, and tokens of the old key keep working on both.
func TestMultiProcessAccessTokens(t *testing.T) {
	dbBase, redisBase := mpBackends(t)
	bin := mpBuild(t)
	dbURL := mpSchema(t, dbBase)
	env := []string{
		"WALLETAUTH_DATABASE_URL=" + dbURL,
		"WALLETAUTH_REDIS_URL=" + redisBase,
		"WALLETAUTH_SECRET_KEY=d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ=",
		"WALLETAUTH_HTTP_ADDR=127.0.0.1:0",
		"WALLETAUTH_SIWE_DOMAIN=walletauth.test",
		"WALLETAUTH_EMAIL_FAIL_PER_IP=0",
		"WALLETAUTH_SIGNUP_PER_IP=0",
	}
	a := mpStart(t, bin, "A", env)
	b := mpStart(t, bin, "B", env)
	c := &mpClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}
	email := mpEmail(t)
	body := map[string]string{"email": email, "password": mpPassword}
	var up atLogin
	c.wantJSON(c.do(a, "POST", "/v1/auth/email/signup", body, ""), 201, &up)
	var other atLogin
	c.wantJSON(c.do(b, "POST", "/v1/auth/email/login", body, ""), 200, &other)
	if atKID(t, up.AccessToken) != atKID(t, other.AccessToken) {
		t.Fatal("the instances sign with different keys")
	}
	for _, s := range []*mpServer{a, b, b} { // cached on B now
		c.wantStatus(c.do(s, "GET", "/v1/users/me", nil, up.AccessToken), 200)
		c.wantStatus(c.do(s, "GET", "/v1/users/me", nil, other.AccessToken), 200)
	}
	c.wantStatus(c.do(a, "POST", "/v1/auth/logout", nil, up.AccessToken), 204)
	c.wantRevoked(b, up.AccessToken, up.AuthToken)
	c.wantRevoked(a, up.AccessToken)
	c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, other.AccessToken), 200)

	first := atKID(t, other.AccessToken)
	cmd := exec.Command(bin, "keys", "rotate", "--json")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALLETAUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("keys rotate: %v %s", err, out)
	}
	rotatedAt := time.Now()
	var rotated atKey
	if err := json.Unmarshal(out, &rotated); err != nil || rotated.KID == "" || rotated.KID == first {
		t.Fatalf("keys rotate printed %s (%v)", out, err)
	}
	for _, s := range []*mpServer{a, b} {
		if kids := atJWKSKids(t, s.url); len(kids) != 2 || kids[0] != rotated.KID || kids[1] != first {
			t.Fatalf("JWKS of %s right after the rotation: %v", s.name, kids)
		}
	}
	for _, s := range []*mpServer{a, b} {
		for {
			var l atLogin
			c.wantJSON(c.do(s, "POST", "/v1/auth/email/login", body, ""), 200, &l)
			if atKID(t, l.AccessToken) == rotated.KID {
				t.Logf("%s signs with the new key %v after the rotation", s.name, time.Since(rotatedAt).Round(time.Millisecond))
				c.wantStatus(c.do(a, "GET", "/v1/users/me", nil, l.AccessToken), 200)
				c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, l.AccessToken), 200)
				break
			}
			if time.Since(rotatedAt) > atRotationBound {
				t.Fatalf("%s still signs with %s %v after the rotation", s.name, atKID(t, l.AccessToken), atRotationBound)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, s := range []*mpServer{a, b} {
		c.wantStatus(c.do(s, "GET", "/v1/users/me", nil, other.AccessToken), 200)
	}
}
