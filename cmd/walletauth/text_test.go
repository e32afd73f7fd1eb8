package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/partners"
)

// Strings that are not text a database can keep unchanged: a NUL
// character (PostgreSQL refuses it), invalid UTF-8 (PostgreSQL refuses it,
// encoding/json would turn it into U+FFFD) and lone UTF-16 surrogates
// (encoding/json turns them into U+FFFD, so two different passwords would
// be one). Each is given as the raw JSON string token sent in a body.
var badJSONStrings = map[string]string{
	"nul":                  `"a\u0000b"`,
	"nul only":             `"\u0000"`,
	"invalid utf-8 ff":     "\"a\xffb\"",
	"invalid utf-8 c3 28":  "\"a\xc3\x28b\"",
	"truncated utf-8":      "\"a\xe2\x82\"",
	"lone high surrogate":  `"x\ud800"`,
	"lone low surrogate":   `"\udc00x"`,
	"high then non-low":    `"\ud800\u0041"`,
	"high then high":       `"\uD800\uDBFF\uDC00"`,
	"high then plain char": `"\udbffz"`,
}

// The same, percent-encoded in a path segment or a query parameter.
var badEscapedStrings = []string{"%00", "a%00b", "%FF", "%C3%28", "a%E2%82"}

// textFixture is an app with the accounts the table needs.
type textFixture struct {
	*testApp
	user, partner, clientPartnerID string
}

func newTextFixture(t *testing.T, b testBackend) *textFixture {
	t.Helper()
	a := newTestApp(t, withEnv(b.env(t)...))
	f := &textFixture{testApp: a, user: a.Signup(t, apitest.UniqueEmail(t)).AuthToken, partner: a.newPartner(t)}
	keys, err := loadKeyring(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := partners.NewRegistry(a.db, keys, a.now).Create(context.Background(),
		partners.NewPartner{Name: "web", ClientLogin: true, Origins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	f.clientPartnerID = p.ID
	// A partner user for the per-user routes' other parameters.
	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/partner/users/login", `{"external_id":"ext-1"}`, f.partnerAuth()...), http.StatusOK)
	return f
}

func (f *textFixture) userAuth() []string    { return apitest.Bearer(f.user) }
func (f *textFixture) partnerAuth() []string { return apitest.Bearer(f.partner) }
func (f *textFixture) origin() []string      { return []string{"Origin", "https://app.example.com"} }

// bodyEndpoint is an endpoint taking a JSON object: fields holds a valid
// raw JSON value for each of its string fields.
type bodyEndpoint struct {
	method, path string
	headers      func(*textFixture) []string
	fields       map[string]string
}

func textBodyEndpoints(f *textFixture) []bodyEndpoint {
	none := func(*textFixture) []string { return nil }
	user := (*textFixture).userAuth
	partner := (*textFixture).partnerAuth
	msg := `"example.com wants you to sign in with your Ethereum account:\n0x0000000000000000000000000000000000000001\n\nURI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abcdefghijklmnop\nIssued At: 2026-01-22T08:36:58Z"`
	sig := `"0x` + strings.Repeat("11", 65) + `"`
	return []bodyEndpoint{
		{http.MethodPost, "/v1/auth/email/signup", none, map[string]string{
			"email": `"x@example.com"`, "password": `"` + apitest.Password + `"`, "username": `"someone"`, "language": `"en"`, "referral_code": `"ABC"`}},
		{http.MethodPost, "/v1/auth/email/login", none, map[string]string{"email": `"x@example.com"`, "password": `"` + apitest.Password + `"`}},
		{http.MethodPost, "/v1/auth/wallet/challenge", none, map[string]string{"address": `"0x0000000000000000000000000000000000000001"`, "chain_id": `"1"`}},
		{http.MethodPost, "/v1/auth/wallet/login", none, map[string]string{"message": msg, "signature": sig, "referral_code": `"ABC"`}},
		{http.MethodPost, "/v1/auth/wallet/login", none, map[string]string{"address": `"0x0000000000000000000000000000000000000001"`, "signature": sig}},
		{http.MethodPost, "/v1/auth/code", none, map[string]string{"login_code": `"plc_abc"`}},
		{http.MethodPatch, "/v1/users/me", user, map[string]string{"username": `"someone"`, "language": `"en"`}},
		{http.MethodPost, "/v1/users/me/email", user, map[string]string{"email": `"y@example.com"`, "password": `"` + apitest.Password + `"`}},
		{http.MethodPost, "/v1/users/me/referrer", user, map[string]string{"referral_code": `"ABC"`}},
		{http.MethodPost, "/v1/users/me/wallets", user, map[string]string{"message": msg, "signature": sig}},
		{http.MethodPost, "/v1/partner/users/login", partner, map[string]string{
			"external_id": `"e-1"`, "first_name": `"Ann"`, "last_name": `"Lee"`, "email": `"a@example.com"`, "referral_code": `"ABC"`}},
		{http.MethodPost, "/v1/partner/tokens/verify", partner, map[string]string{"token": `"tok"`}},
		{http.MethodDelete, "/v1/partner/users", partner, map[string]string{"external_ids": `["e-1"]`}},
		{http.MethodPost, "/v1/partner/users/ext-1/points", partner, map[string]string{"reason": `"bonus"`, "idempotency_key": `"k1"`}},
		{http.MethodPost, "/v1/js/partners/" + f.clientPartnerID + "/users/login", (*textFixture).origin, map[string]string{
			"external_id": `"e-2"`, "first_name": `"Ann"`, "email": `"b@example.com"`, "referral_code": `"ABC"`}},
	}
}

// rawObject writes fields as one JSON object, in a fixed order.
func rawObject(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = `"` + k + `":` + fields[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestTextThatIsNotUnicodeIsRefused: a NUL, invalid UTF-8 or a lone
// surrogate in any string of a body, a path parameter, a query parameter or
// a cursor gets 400 in the error shape (invalid_json for a body, else the
// parameter's own code), on every database — never a 500, never a value
// silently altered into U+FFFD.
func TestTextThatIsNotUnicodeIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		f := newTextFixture(t, b)
		check := func(t *testing.T, method, path, body string, headers []string, code string) {
			t.Helper()
			var rb any
			if body != "" {
				rb = body
			}
			rec := f.do(t, method, path, rb, headers...)
			apitest.WantError(t, rec, http.StatusBadRequest, code)
		}

		t.Run("body", func(t *testing.T) {
			for _, ep := range textBodyEndpoints(f) {
				for field := range ep.fields {
					for name, bad := range badJSONStrings {
						fields := map[string]string{}
						for k, v := range ep.fields {
							fields[k] = v
						}
						if strings.HasPrefix(fields[field], "[") {
							fields[field] = "[" + bad + "]"
						} else {
							fields[field] = bad
						}
						body := rawObject(fields)
						t.Run(ep.method+" "+ep.path+" "+field+" "+name, func(t *testing.T) {
							check(t, ep.method, ep.path, body, ep.headers(f), "invalid_json")
						})
					}
				}
				// A bad key, and a bad string the endpoint does not read.
				for name, bad := range badJSONStrings {
					for _, extra := range []string{"{" + bad + `:"x"}`, `{"unused":` + bad + `}`} {
						t.Run(ep.method+" "+ep.path+" extra "+name, func(t *testing.T) {
							check(t, ep.method, ep.path, extra, ep.headers(f), "invalid_json")
						})
					}
				}
			}
		})

		t.Run("path", func(t *testing.T) {
			for _, bad := range badEscapedStrings {
				for _, tc := range []struct {
					method, path string
					headers      []string
					body, code   string
				}{
					{http.MethodGet, "/v1/partner/users/" + bad, f.partnerAuth(), "", "invalid_external_id"},
					{http.MethodPost, "/v1/partner/users/" + bad + "/points", f.partnerAuth(), `{"amount":1,"reason":"r","idempotency_key":"k"}`, "invalid_external_id"},
					{http.MethodGet, "/v1/partner/users/" + bad + "/ranking", f.partnerAuth(), "", "invalid_external_id"},
					{http.MethodPost, "/v1/js/partners/" + bad + "/users/login", f.origin(), `{"external_id":"e"}`, "invalid_parameter"},
					{http.MethodOptions, "/v1/js/partners/" + bad + "/users/login", append(f.origin(), "Access-Control-Request-Method", "POST"), "", "invalid_parameter"},
					{http.MethodDelete, "/v1/users/me/wallets/" + bad, f.userAuth(), "", "invalid_address"},
					{http.MethodPut, "/v1/users/me/wallets/" + bad + "/primary", f.userAuth(), "", "invalid_address"},
				} {
					t.Run(tc.method+" "+tc.path, func(t *testing.T) { check(t, tc.method, tc.path, tc.body, tc.headers, tc.code) })
				}
			}
		})

		t.Run("query", func(t *testing.T) {
			for _, bad := range badEscapedStrings {
				for _, tc := range []struct {
					path    string
					headers []string
					code    string
				}{
					{"/v1/auth/wallet/challenge?address=" + bad, nil, "invalid_address"},
					{"/v1/auth/wallet/challenge?address=0x0000000000000000000000000000000000000001&chain_id=" + bad, nil, "chain_not_allowed"},
					{"/v1/users/me/referrals?cursor=" + bad, f.userAuth(), "invalid_cursor"},
					{"/v1/users/me/referrals?limit=" + bad, f.userAuth(), "invalid_parameter"},
					{"/v1/partner/users?cursor=" + bad, f.partnerAuth(), "invalid_cursor"},
					{"/v1/partner/users?updated_since=" + bad, f.partnerAuth(), "invalid_parameter"},
					{"/v1/partner/users?limit=" + bad, f.partnerAuth(), "invalid_parameter"},
					{"/v1/partner/users/ext-1/ranking?n=" + bad, f.partnerAuth(), "invalid_parameter"},
				} {
					t.Run(tc.path, func(t *testing.T) { check(t, http.MethodGet, tc.path, "", tc.headers, tc.code) })
				}
			}
		})

		t.Run("jwt iss", func(t *testing.T) {
			// Not a parameter but read from a header: a request JWT naming a
			// partner ID that no partner can have is a plain refusal.
			for _, iss := range []string{"a\x00b", "\x00"} {
				tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"iss": iss, "iat": f.now().Unix(), "jti": rand.Text(),
					"body_sha256": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", // SHA-256 of no body
				}).SignedString([]byte(f.partner))
				if err != nil {
					t.Fatal(err)
				}
				apitest.WantError(t, f.do(t, http.MethodGet, "/v1/partner/users", nil, apitest.Bearer(tok)...), http.StatusUnauthorized, "partner_unauthorized")
			}
		})

		t.Run("cursor content", func(t *testing.T) {
			// Cursors are opaque base64url, but what they decode to reaches
			// the database: a made-up one must not carry a NUL or bad UTF-8.
			enc := base64.RawURLEncoding.EncodeToString
			for _, tc := range []struct{ path, cursor string }{
				{"/v1/users/me/referrals", enc([]byte("1769070000000000.a\x00b"))},
				{"/v1/users/me/referrals", enc([]byte("1769070000000000.a\xffb"))},
				{"/v1/users/me/referrals", enc([]byte("1769070000000000.a\xc3\x28"))},
				{"/v1/partner/users", enc([]byte(`{"t":"2026-01-22T08:36:58Z","u":"a\u0000b","e":"x"}`))},
				{"/v1/partner/users", enc([]byte(`{"t":"2026-01-22T08:36:58Z","u":"u1","e":"a\u0000b"}`))},
				{"/v1/partner/users", enc([]byte("{\"t\":\"2026-01-22T08:36:58Z\",\"u\":\"u1\",\"e\":\"a\xffb\"}"))},
				{"/v1/partner/users", enc([]byte(`{"t":"2026-01-22T08:36:58Z","u":"u1","e":"a\ud800"}`))},
			} {
				headers := f.userAuth()
				if strings.HasPrefix(tc.path, "/v1/partner/") {
					headers = f.partnerAuth()
				}
				t.Run(tc.path+" "+tc.cursor, func(t *testing.T) {
					check(t, http.MethodGet, tc.path+"?cursor="+tc.cursor, "", headers, "invalid_cursor")
				})
			}
		})
	})
}

// TestUnicodeTextStillWorks: text outside ASCII, escaped surrogate pairs
// included, is taken as it is everywhere the refusals above apply.
func TestUnicodeTextStillWorks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		f := newTextFixture(t, b)

		// A password with umlauts and an emoji, sent once as UTF-8 and once
		// escaped as a surrogate pair: the same password.
		email := apitest.UniqueEmail(t)
		rec := f.do(t, http.MethodPost, "/v1/auth/email/signup",
			`{"email":"`+email+`","password":"Ärger-im-Büro-\ud83d\ude00"}`)
		apitest.WantStatus(t, rec, http.StatusCreated)
		f.EmailLogin(t, email, "Ärger-im-Büro-😀")
		rec = f.do(t, http.MethodPost, "/v1/auth/email/login", `{"email":"`+email+`","password":"Ärger-im-Büro-\uFFFD"}`)
		apitest.WantError(t, rec, http.StatusUnauthorized, "invalid_credentials")

		// Partner data: external ID, names, reason and key.
		ext := "Ärger 😀/42"
		rec = f.do(t, http.MethodPost, "/v1/partner/users/login",
			map[string]any{"external_id": ext, "first_name": "Zoë", "last_name": "Ærø 😀"}, f.partnerAuth()...)
		apitest.WantStatus(t, rec, http.StatusOK)
		path := "/v1/partner/users/" + strings.NewReplacer("/", "%2F", " ", "%20").Replace(ext)
		apitest.WantStatus(t, f.do(t, http.MethodGet, path, nil, f.partnerAuth()...), http.StatusOK)
		rec = f.do(t, http.MethodPost, path+"/points",
			map[string]any{"amount": 3, "reason": "Prämie 🎉", "idempotency_key": "schlüssel-😀"}, f.partnerAuth()...)
		apitest.WantStatus(t, rec, http.StatusOK)
		if !strings.Contains(rec.Body.String(), `"points":3`) {
			t.Fatalf("points: %s", rec.Body)
		}
		rec = f.do(t, http.MethodGet, path+"/ranking?n=1", nil, f.partnerAuth()...)
		apitest.WantStatus(t, rec, http.StatusOK)
		if !strings.Contains(rec.Body.String(), `"external_id":"Ärger 😀/42"`) {
			t.Fatalf("ranking: %s", rec.Body)
		}
		// A cursor the service issued still works.
		for i := 0; i < 3; i++ {
			apitest.WantStatus(t, f.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "ü-" + randomHex(t, 4)}, f.partnerAuth()...), http.StatusOK)
		}
		rec = f.do(t, http.MethodGet, "/v1/partner/users?limit=1", nil, f.partnerAuth()...)
		apitest.WantStatus(t, rec, http.StatusOK)
		var page struct {
			NextCursor *string `json:"next_cursor"`
		}
		apitest.DecodeJSON(t, rec, &page)
		if page.NextCursor == nil {
			t.Fatalf("no next cursor: %s", rec.Body)
		}
		apitest.WantStatus(t, f.do(t, http.MethodGet, "/v1/partner/users?limit=1&cursor="+*page.NextCursor, nil, f.partnerAuth()...), http.StatusOK)
	})
}
