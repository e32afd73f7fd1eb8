package apitest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
)

// User is the contract's user object as a client reads it.
type User struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Email         *string  `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Language      string   `json:"language"`
	Address       *string  `json:"address"`
	Wallets       []Wallet `json:"wallets"`
	Points        int64    `json:"points"`
	ReferralCode  string   `json:"referral_code"`
	Referrer      *string  `json:"referrer"`
	RefereeCount  int64    `json:"referee_count"`
	JoinedAt      string   `json:"joined_at"`
}

// Wallet is a wallet of the contract's user object.
type Wallet struct {
	Address  string `json:"address"`
	ChainID  uint64 `json:"chain_id"`
	Type     string `json:"type"`
	Primary  bool   `json:"primary"`
	LinkedAt string `json:"linked_at"`
}

// Login is what every successful login answers. Created is nil when the
// answer lacks it.
type Login struct {
	AuthToken   string `json:"auth_token"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	User        User   `json:"user"`
	Created     *bool  `json:"created"`
}

// IsCreated reports whether the answer says created: true.
func (l Login) IsCreated() bool { return l.Created != nil && *l.Created }

// Password is accepted by the signup policy (long, not a common one);
// Client.Signup signs up with it.
const Password = "kiwi-Lantern-42-orbit" //nolint:gosec // G101: a test password, not a credential

// Client sends the requests of the contract's account endpoints to
// Handler, from IP (a test changes IP to be another client).
type Client struct {
	Handler http.Handler
	IP      string
}

// Signup signs up email with Password (fields are name, value pairs
// overriding or adding to the body) and returns the answer; it fails the
// test unless 201 with a token and created: true.
func (c Client) Signup(tb testing.TB, email string, fields ...string) Login {
	tb.Helper()
	body := map[string]string{"email": email, "password": Password}
	for i := 0; i+1 < len(fields); i += 2 {
		body[fields[i]] = fields[i+1]
	}
	rec := Do(tb, c.Handler, c.IP, http.MethodPost, "/v1/auth/email/signup", body)
	WantStatus(tb, rec, http.StatusCreated)
	var out Login
	DecodeJSON(tb, rec, &out)
	if out.AuthToken == "" || !out.IsCreated() {
		tb.Fatalf("signup: want a token and created:true, got %s", rec.Body)
	}
	return out
}

// EmailLogin logs in by email and returns the answer; it fails the test
// unless 200.
func (c Client) EmailLogin(tb testing.TB, email, password string) Login {
	tb.Helper()
	return DecodeOK[Login](tb, Do(tb, c.Handler, c.IP, http.MethodPost, "/v1/auth/email/login",
		map[string]string{"email": email, "password": password}))
}

// Me returns GET /v1/users/me for token; it fails the test unless 200.
func (c Client) Me(tb testing.TB, token string) User {
	tb.Helper()
	return DecodeOK[User](tb, Do(tb, c.Handler, c.IP, http.MethodGet, "/v1/users/me", nil, Bearer(token)...))
}

// WantUnauthorized checks that token is refused on GET /v1/users/me.
func (c Client) WantUnauthorized(tb testing.TB, token string) {
	tb.Helper()
	WantError(tb, Do(tb, c.Handler, c.IP, http.MethodGet, "/v1/users/me", nil, Bearer(token)...), http.StatusUnauthorized, "unauthorized")
}

// UniqueEmail is an address no other test uses.
func UniqueEmail(tb testing.TB) string {
	tb.Helper()
	return "u" + hex.EncodeToString(random(tb, 6)) + "@example.com"
}

// RandomIP is a client address from 198.18.0.0/15 (the benchmarking
// range), random so that rate-limit counters in a shared Redis do not
// collide between tests and runs.
func RandomIP(tb testing.TB) string {
	tb.Helper()
	b := random(tb, 2)
	return fmt.Sprintf("198.18.%d.%d", b[0], b[1])
}

func random(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}
