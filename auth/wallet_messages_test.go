package auth_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/wallet"
)

// fractionalSeconds matches a time written with a fraction of a second.
var fractionalSeconds = regexp.MustCompile(`\d\d:\d\d:\d\d\.\d`)

// TestWalletLoginErrorMessagesForPeople: the messages of refused wallet
// logins say what is wrong in words meant for a person: no Go package
// prefix ("wallet: …", nested ones included) and times in RFC 3339 seconds
// (the clock and the client's Issued At carry milliseconds here).
func TestWalletLoginErrorMessagesForPeople(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	e.clock.Advance(123456789 * time.Nanosecond) // now has a fraction of a second
	future := func(m *wallet.Message) { m.IssuedAt = e.clock.Now().Add(10*time.Minute + 250*time.Millisecond) }
	tests := []struct {
		name   string
		body   func() map[string]string
		status int
		code   string
	}{
		{"issued in the future", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t), future)
			return map[string]string{"message": msg, "signature": hex0x(s.sign(t, msg))}
		}, http.StatusUnauthorized, "message_not_yet_valid"},
		{"not before in the future", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t), func(m *wallet.Message) {
				nb := e.clock.Now().Add(time.Hour + 500*time.Millisecond)
				m.NotBefore = &nb
			})
			return map[string]string{"message": msg, "signature": hex0x(s.sign(t, msg))}
		}, http.StatusUnauthorized, "message_not_yet_valid"},
		{"URI off the domain", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t), func(m *wallet.Message) { m.URI = "https://other.example/" })
			return map[string]string{"message": msg, "signature": hex0x(s.sign(t, msg))}
		}, http.StatusUnauthorized, "domain_mismatch"},
		{"domain not allowed", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t), func(m *wallet.Message) { m.Domain = "evil.example"; m.URI = "https://evil.example/" })
			return map[string]string{"message": msg, "signature": hex0x(s.sign(t, msg))}
		}, http.StatusUnauthorized, "domain_mismatch"},
		{"scheme javascript", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t), func(m *wallet.Message) { m.Scheme = "javascript" })
			return map[string]string{"message": msg, "signature": hex0x(s.sign(t, msg))}
		}, http.StatusBadRequest, "invalid_message"},
		{"bad checksum on line 2", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t))
			lines := strings.Split(msg, "\n")
			lines[1] = "0x" + strings.ToUpper(lines[1][2:3]) + strings.ToLower(lines[1][3:])
			if lines[1][2] >= '0' && lines[1][2] <= '9' { // make the case mixed and wrong
				lines[1] = lines[1][:3] + strings.ToUpper(lines[1][3:4]) + lines[1][4:]
			}
			bad := strings.Join(lines, "\n")
			return map[string]string{"message": bad, "signature": hex0x(s.sign(t, bad))}
		}, http.StatusBadRequest, "invalid_message"},
		{"issued at not a date", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t))
			i := strings.Index(msg, "Issued At: ")
			bad := msg[:i] + "Issued At: yesterday"
			return map[string]string{"message": bad, "signature": hex0x(s.sign(t, bad))}
		}, http.StatusBadRequest, "invalid_message"},
		{"odd hex signature", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t))
			return map[string]string{"message": msg, "signature": "0xabc"}
		}, http.StatusBadRequest, "invalid_signature"},
		{"short signature", func() map[string]string {
			msg := e.selfMessage(t, s.addr, e.nonce(t))
			return map[string]string{"message": msg, "signature": "0xabcd"}
		}, http.StatusBadRequest, "invalid_signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, http.MethodPost, "/v1/auth/wallet/login", tc.body(), "")
			apitest.WantError(t, rec, tc.status, tc.code)
			msg := apitest.ErrorMessage(t, rec)
			t.Logf("%d %s: %s", rec.Code, tc.code, msg)
			if strings.Contains(msg, "wallet:") {
				t.Errorf("message %q carries a Go package prefix", msg)
			}
			if fractionalSeconds.MatchString(msg) {
				t.Errorf("message %q writes a time with fractional seconds", msg)
			}
		})
	}
}

// TestChallengeChainMessageForPeople: a challenge for a chain that is not
// allowed names the allowed chains as a list a person reads ("1, 5"), not
// as Go prints a slice ("[1 5]").
func TestChallengeChainMessageForPeople(t *testing.T) {
	e := newEnv(t, withWallet(func(c *auth.WalletConfig) { c.ChainIDs = []uint64{1, 5} }))
	s := newSigner(t)
	rec := e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+s.addr.Hex()+"&chain_id=7", nil, "")
	apitest.WantError(t, rec, http.StatusBadRequest, "chain_not_allowed")
	if msg := apitest.ErrorMessage(t, rec); !strings.Contains(msg, "1, 5") || strings.Contains(msg, "[") {
		t.Errorf("message %q: want the allowed chains written as 1, 5", msg)
	}
}
