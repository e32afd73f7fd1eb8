package auth_test

import (
	"net/http"
	"testing"

	siwe "github.com/spruceid/siwe-go"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/wallet"
)

// TestWalletLoginSchemeAndURI: v1.1 refuses a first-line scheme other than
// https or http (400 invalid_message) and a URI that is not an https:// or
// http:// URI or that carries userinfo (401 domain_mismatch), even when the
// message names this service's domain and is correctly signed.
func TestWalletLoginSchemeAndURI(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	tests := []struct {
		name   string
		edit   func(*wallet.Message)
		status int
		code   string
	}{
		{"scheme javascript", func(m *wallet.Message) { m.Scheme = "javascript" }, http.StatusBadRequest, "invalid_message"},
		{"scheme wss", func(m *wallet.Message) { m.Scheme = "wss" }, http.StatusBadRequest, "invalid_message"},
		{"URI javascript: on the domain", func(m *wallet.Message) { m.URI = "javascript://" + testDomain + "/%0Aalert(1)" }, http.StatusUnauthorized, "domain_mismatch"},
		{"URI javascript:", func(m *wallet.Message) { m.URI = "javascript:alert(1)" }, http.StatusUnauthorized, "domain_mismatch"},
		{"URI with userinfo", func(m *wallet.Message) { m.URI = "https://evil.example@" + testDomain + "/" }, http.StatusUnauthorized, "domain_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := e.selfMessage(t, s.addr, e.nonce(t), tc.edit)
			apitest.WantError(t, e.login(t, msg, s.sign(t, msg)), tc.status, tc.code)
		})
	}
	// Both web schemes, in any case, sign in.
	for i, edit := range []func(*wallet.Message){
		func(m *wallet.Message) { m.Scheme = "https" },
		func(m *wallet.Message) { m.Scheme = "HTTP"; m.URI = "HTTP://" + testDomain + "/" },
	} {
		msg := e.selfMessage(t, s.addr, e.nonce(t), edit)
		wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, i == 0)
	}
}

// TestChallengeReadBySiweGo: the issued challenge (built with siwe-go) is
// read back by siwe-go and by wallet.ParseMessage into the same fields, and
// siwe-go writes it back byte for byte.
func TestChallengeReadBySiweGo(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	for _, path := range []string{"/v1/auth/wallet/challenge?address=" + s.addr.Hex(), "/v1/auth/wallet/challenge?address=" + s.addr.Hex() + "&chain_id=137"} {
		ch := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodGet, path, nil, ""))
		ours, err := wallet.ParseMessage(ch.Message)
		if err != nil {
			t.Fatalf("ParseMessage: %v\n%s", err, ch.Message)
		}
		theirs, err := siwe.ParseMessage(ch.Message)
		if err != nil {
			t.Fatalf("siwe-go ParseMessage: %v\n%s", err, ch.Message)
		}
		if got := theirs.String(); got != ch.Message {
			t.Errorf("siwe-go writes\n%q\nissued\n%q", got, ch.Message)
		}
		uri := theirs.GetURI()
		if theirs.GetDomain() != ours.Domain || theirs.GetAddress() != ours.Address || uri.String() != ours.URI ||
			uint64(theirs.GetChainID()) != ours.ChainID || theirs.GetNonce() != ours.Nonce || theirs.GetNonce() != ch.Nonce {
			t.Errorf("siwe-go reads %+v, ParseMessage %+v", theirs, ours)
		}
	}
}
