package auth_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/wallet"
)

// loginCodes are the answers POST /v1/auth/wallet/login may give, by status.
var loginCodes = map[int][]string{
	http.StatusBadRequest:            {"invalid_json", "invalid_message", "invalid_signature", "invalid_address", "invalid_referral_code"},
	http.StatusUnauthorized:          {"signature_mismatch", "nonce_invalid", "message_expired", "message_not_yet_valid", "domain_mismatch", "chain_not_allowed"},
	http.StatusRequestEntityTooLarge: {"body_too_large"},
}

// FuzzWalletLoginBody posts arbitrary bytes as the login body through the
// router: never a 500, always 200 with a session or a contract error.
func FuzzWalletLoginBody(f *testing.F) {
	e := newEnv(f)
	s := newSigner(f)
	// Live seeds: a valid body of each form, and ones one edit away.
	ch := e.challenge(f, s.addr.Hex())
	sig := hex0x(s.sign(f, ch.Message))
	valid, _ := json.Marshal(map[string]string{"message": ch.Message, "signature": sig})
	f.Add(valid)
	ch2 := e.challenge(f, newSigner(f).addr.Hex())
	f.Add([]byte(`{"address":"` + strings.ToLower(s.addr.Hex()) + `","signature":"` + sig + `"}`))
	self := e.selfMessage(f, s.addr, e.nonce(f))
	selfBody, _ := json.Marshal(map[string]string{"message": self, "signature": hex0x(compact(s.sign(f, self))), "referral_code": "ABCDEFGH"})
	f.Add(selfBody)
	f.Add([]byte(`{"message":` + jsonString(ch2.Message) + `,"signature":"0x1234"}`))
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(`{"message":"x","signature":1e999999}`))
	f.Add([]byte(`{"address":"0x` + strings.Repeat("9", 40) + `","signature":"0x` + strings.Repeat("00", 65) + `"}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		rec := apitest.Do(t, e.router, clientIP, http.MethodPost, loginPath, body)

		if rec.Code == http.StatusOK {
			var l apitest.Login
			if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || l.AuthToken == "" || l.User.ID == "" || l.Created == nil {
				t.Fatalf("200 with body %s", rec.Body)
			}
			return
		}
		code, msg := apitest.ErrorCode(t, rec), apitest.ErrorMessage(t, rec) // the error shape, or the test fails
		ok := false
		for _, c := range loginCodes[rec.Code] {
			ok = ok || c == code
		}
		if !ok {
			t.Fatalf("body %q: %d %s (%s), not a contract answer of wallet login", body, rec.Code, code, msg)
		}
		// A message the parser accepts is never answered invalid_message.
		if code == "invalid_message" {
			var req struct{ Message string }
			if json.Unmarshal(body, &req) == nil && req.Message != "" {
				if _, err := wallet.ParseMessage(req.Message); err == nil {
					t.Fatalf("invalid_message (%s) for a message that parses", msg)
				}
			}
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
