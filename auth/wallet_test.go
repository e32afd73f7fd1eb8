package auth_test

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
)

const loginPath = "/v1/auth/wallet/login"

// replaceLine replaces the value of the message line starting with prefix.
func replaceLine(tb testing.TB, msg, prefix, value string) string {
	tb.Helper()
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = prefix + value
			return strings.Join(lines, "\n")
		}
	}
	tb.Fatalf("no line %q in %q", prefix, msg)
	return ""
}

func ptr[T any](v T) *T { return &v }

var alnum16 = regexp.MustCompile(`^[A-Za-z0-9]{16,}$`)

// badChecksum is EIP-55's 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed with
// one letter's case flipped: mixed case, wrong checksum.
const badChecksum = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

func TestChallenge(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	now := e.clock.Now()

	get := e.challenge(t, s.addr.Hex())
	post := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
		map[string]any{"address": strings.ToLower(s.addr.Hex()), "chain_id": 137}, ""))
	for _, tc := range []struct {
		name  string
		ch    challengeJSON
		chain uint64
	}{{"GET", get, 1}, {"POST", post, 137}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := wallet.ParseMessage(tc.ch.Message)
			if err != nil {
				t.Fatalf("issued message does not parse: %v\n%s", err, tc.ch.Message)
			}
			if m.Domain != testDomain || m.URI != testURI || m.Scheme != "" {
				t.Errorf("domain %q URI %q, want the configured %q %q", m.Domain, m.URI, testDomain, testURI)
			}
			if m.Address != s.addr || !strings.Contains(tc.ch.Message, "\n"+s.addr.Hex()+"\n") {
				t.Errorf("message names %s, want %s in EIP-55", m.Address.Hex(), s.addr.Hex())
			}
			if m.ChainID != tc.chain || m.Nonce != tc.ch.Nonce || !alnum16.MatchString(m.Nonce) {
				t.Errorf("chain %d nonce %q, want chain %d and a nonce of ≥16 alphanumerics (answer %q)", m.ChainID, m.Nonce, tc.chain, tc.ch.Nonce)
			}
			if !m.IssuedAt.Equal(now) || m.ExpirationTime == nil || !m.ExpirationTime.Equal(now.Add(challengeTTL)) {
				t.Errorf("issued %v expires %v, want %v + %v", m.IssuedAt, m.ExpirationTime, now, challengeTTL)
			}
			if tc.ch.ExpiresAt != now.Add(challengeTTL).Format(time.RFC3339) {
				t.Errorf("expires_at %q, want %q", tc.ch.ExpiresAt, now.Add(challengeTTL).Format(time.RFC3339))
			}
			if m.Statement == nil || *m.Statement != "Sign in to the example app." {
				t.Errorf("statement %v", m.Statement)
			}
		})
	}
	str := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
		map[string]any{"address": "0X" + strings.ToUpper(s.addr.Hex()[2:]), "chain_id": "137"}, ""))
	if m, err := wallet.ParseMessage(str.Message); err != nil || m.ChainID != 137 || m.Address != s.addr {
		t.Fatalf("POST chain_id \"137\", address 0X…: %v %+v", err, m)
	}
	if get.Nonce == post.Nonce {
		t.Fatal("two challenges with one nonce")
	}

	bad := badChecksum
	for _, tc := range []struct {
		name, query string
		body        string
		code        string
	}{
		{"bad checksum", "address=" + bad, "", "invalid_address"},
		{"short", "address=0x1234", "", "invalid_address"},
		{"no 0x", "address=" + s.addr.Hex()[2:], "", "invalid_address"},
		{"0X, bad checksum", "address=0X" + badChecksum[2:], "", "invalid_address"},
		{"missing", "", "", "invalid_address"},
		{"zero address", "address=0x0000000000000000000000000000000000000000", "", "invalid_address"},
		{"chain not allowed", "chain_id=5&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"chain hex", "chain_id=0x1&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"chain negative", "chain_id=-1&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"chain word", "chain_id=one&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"chain huge", "chain_id=99999999999999999999999&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"chain long garbage", "chain_id=" + strings.Repeat("x", 500) + "&address=" + s.addr.Hex(), "", "chain_not_allowed"},
		{"POST bad address", "", `{"address":"0x12"}`, "invalid_address"},
		{"POST zero address", "", `{"address":"0x0000000000000000000000000000000000000000","chain_id":1}`, "invalid_address"},
		{"POST chain not allowed", "", `{"address":"` + s.addr.Hex() + `","chain_id":5}`, "chain_not_allowed"},
		{"POST chain word", "", `{"address":"` + s.addr.Hex() + `","chain_id":"x"}`, "chain_not_allowed"},
		{"POST chain hex string", "", `{"address":"` + s.addr.Hex() + `","chain_id":"0x1"}`, "chain_not_allowed"},
		{"POST chain huge", "", `{"address":"` + s.addr.Hex() + `","chain_id":99999999999999999999999}`, "chain_not_allowed"},
		// Not an integer nor a decimal string: a wrong field type.
		{"POST chain fraction", "", `{"address":"` + s.addr.Hex() + `","chain_id":1.5}`, "invalid_json"},
		{"POST chain negative", "", `{"address":"` + s.addr.Hex() + `","chain_id":-1}`, "invalid_json"},
		{"POST chain bool", "", `{"address":"` + s.addr.Hex() + `","chain_id":true}`, "invalid_json"},
		{"POST chain object", "", `{"address":"` + s.addr.Hex() + `","chain_id":{}}`, "invalid_json"},
		{"POST chain zero", "", `{"address":"` + s.addr.Hex() + `","chain_id":0}`, "chain_not_allowed"},
		{"POST not JSON", "", `{"address":`, "invalid_json"},
		{"POST address number", "", `{"address":1}`, "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec *httptest.ResponseRecorder
			if tc.body != "" {
				rec = e.do(t, http.MethodPost, "/v1/auth/wallet/challenge", tc.body, "")
			} else {
				rec = e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?"+tc.query, nil, "")
			}
			apitest.WantError(t, rec, http.StatusBadRequest, tc.code)
		})
	}

	t.Run("nonce", func(t *testing.T) {
		n := apitest.DecodeOK[map[string]string](t, e.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil, ""))
		if !alnum16.MatchString(n["nonce"]) || n["expires_at"] != now.Add(challengeTTL).Format(time.RFC3339) {
			t.Fatalf("nonce answer %v", n)
		}
		if n2 := e.nonce(t); n2 == n["nonce"] {
			t.Fatal("GET /nonce gave one nonce twice")
		}
	})
}

// TestWalletLogin logs one wallet in every way the contract offers, on every
// backend: challenge from GET and POST, a self-built message around GET
// /nonce, the {address, signature} form; v as 0/1 and 27/28 and the 64-byte
// EIP-2098 form.
func TestWalletLogin(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			s := newSigner(t)

			ch := e.challenge(t, s.addr.Hex())
			first := wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, true)
			u := first.User
			if u.Address == nil || *u.Address != s.addr.Hex() || len(u.Wallets) != 1 {
				t.Fatalf("new user's address %v wallets %+v, want %s", u.Address, u.Wallets, s.addr.Hex())
			}
			if w := u.Wallets[0]; w.Type != "eoa" || !w.Primary || w.ChainID != 1 || w.LinkedAt != e.clock.Now().Format(time.RFC3339) {
				t.Fatalf("wallet %+v, want eoa, primary, chain 1, linked now", w)
			}
			if u.Referrer != nil || u.ReferralCode == "" || u.Username == "" {
				t.Fatalf("new user %+v", u)
			}
			me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, first.AuthToken))
			if me.ID != u.ID {
				t.Fatalf("token of the login is user %s, want %s", me.ID, u.ID)
			}

			same := func(t *testing.T, rec *httptest.ResponseRecorder) {
				t.Helper()
				l := wantLogin(t, rec, s.addr, false)
				if l.User.ID != u.ID || l.AuthToken == first.AuthToken {
					t.Fatalf("user %s token %s, want user %s and a new token", l.User.ID, l.AuthToken, u.ID)
				}
			}
			t.Run("POST challenge, v 27/28", func(t *testing.T) {
				ch := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
					map[string]any{"address": s.addr.Hex(), "chain_id": 137}, ""))
				same(t, e.login(t, ch.Message, with27(s.sign(t, ch.Message))))
			})
			t.Run("self-built message, EIP-2098", func(t *testing.T) {
				msg := e.selfMessage(t, s.addr, e.nonce(t))
				same(t, e.login(t, msg, compact(s.sign(t, msg))))
			})
			t.Run("self-built message with every field", func(t *testing.T) {
				now := e.clock.Now()
				msg := e.selfMessage(t, s.addr, e.nonce(t), func(m *wallet.Message) {
					m.Scheme = "https"
					m.ChainID = 137
					m.ExpirationTime = ptr(now.Add(10 * time.Minute))
					m.NotBefore = ptr(now.Add(-time.Minute))
					m.RequestID = ptr("req-1")
					m.Resources = []string{"ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/", "https://example.com/my-web2-claim.json"}
				})
				same(t, e.login(t, msg, s.sign(t, msg)))
			})
			t.Run("address form, uppercase hex", func(t *testing.T) {
				ch := e.challenge(t, strings.ToLower(s.addr.Hex()))
				upper := "0x" + strings.ToUpper(s.addr.Hex()[2:])
				same(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": upper, "signature": hex0x(s.sign(t, ch.Message))}, ""))
				// The challenge is used up with its nonce.
				apitest.WantError(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(s.sign(t, ch.Message))}, ""),
					http.StatusUnauthorized, "nonce_invalid")
				apitest.WantError(t, e.login(t, ch.Message, s.sign(t, ch.Message)), http.StatusUnauthorized, "nonce_invalid")
			})
			t.Run("address form, older challenge", func(t *testing.T) {
				older := e.challenge(t, s.addr.Hex())
				newer := e.challenge(t, s.addr.Hex())
				body := func(msg string) map[string]string {
					return map[string]string{"address": strings.ToLower(s.addr.Hex()), "signature": hex0x(s.sign(t, msg))}
				}
				// v1.1: the address's recent challenges all stay usable.
				same(t, e.do(t, http.MethodPost, loginPath, body(older.Message), ""))
				same(t, e.do(t, http.MethodPost, loginPath, body(newer.Message), ""))
				apitest.WantError(t, e.login(t, older.Message, s.sign(t, older.Message)), http.StatusUnauthorized, "nonce_invalid")
			})
		})
	}
}

// loginCase is one wrong login and the error it must get.
type loginCase struct {
	name   string
	run    func(t *testing.T, e *env) *httptest.ResponseRecorder
	status int
	code   string
}

func runLoginCases(t *testing.T, e *env, cases []loginCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitest.WantError(t, tc.run(t, e), tc.status, tc.code)
		})
	}
}

// signedChallenge returns a fresh signer's challenge with the message edited
// by edit and signed by the signer.
func signedChallenge(t *testing.T, e *env, edit func(string) string) (signer, string, []byte) {
	s := newSigner(t)
	msg := edit(e.challenge(t, s.addr.Hex()).Message)
	return s, msg, s.sign(t, msg)
}

func TestWalletLoginMalformed(t *testing.T) {
	e := newEnv(t)
	post := func(body any) func(t *testing.T, e *env) *httptest.ResponseRecorder {
		return func(t *testing.T, e *env) *httptest.ResponseRecorder {
			return e.do(t, http.MethodPost, loginPath, body, "")
		}
	}
	edited := func(edit func(string) string) func(t *testing.T, e *env) *httptest.ResponseRecorder {
		return func(t *testing.T, e *env) *httptest.ResponseRecorder {
			_, msg, sig := signedChallenge(t, e, edit)
			return e.login(t, msg, sig)
		}
	}
	// withSig logs in a fresh challenge with the signature made by sig from
	// the right one, then checks the right one still logs in.
	withSig := func(sig func(good []byte) string) func(t *testing.T, e *env) *httptest.ResponseRecorder {
		return func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s, msg, good := signedChallenge(t, e, func(m string) string { return m })
			rec := e.do(t, http.MethodPost, loginPath, map[string]string{"message": msg, "signature": sig(good)}, "")
			wantLogin(t, e.login(t, msg, good), s.addr, true)
			return rec
		}
	}
	valid := newSigner(t)
	validMsg := e.challenge(t, valid.addr.Hex()).Message
	validSig := hex0x(valid.sign(t, validMsg))
	runLoginCases(t, e, []loginCase{
		{"garbage message", post(map[string]string{"message": "hello", "signature": validSig}), 400, "invalid_message"},
		{"message of one line", post(map[string]string{"message": strings.SplitN(validMsg, "\n", 2)[0], "signature": validSig}), 400, "invalid_message"},
		{"message with a trailing newline", post(map[string]string{"message": validMsg + "\n", "signature": validSig}), 400, "invalid_message"},
		{"empty object", post(`{}`), 400, "invalid_message"},
		{"signature only", post(map[string]string{"signature": validSig}), 400, "invalid_message"},
		{"empty fields", post(map[string]string{"message": "", "address": "", "signature": validSig}), 400, "invalid_message"},
		{"chain ID 0x10", edited(func(m string) string { return replaceLine(t, m, "Chain ID: ", "0x10") }), 400, "invalid_message"},
		{"chain ID 010", edited(func(m string) string { return replaceLine(t, m, "Chain ID: ", "010") }), 400, "invalid_message"},
		{"chain ID 0", edited(func(m string) string { return replaceLine(t, m, "Chain ID: ", "0") }), 400, "invalid_message"},
		{"version 2", edited(func(m string) string { return replaceLine(t, m, "Version: ", "2") }), 400, "invalid_message"},
		{"short nonce", edited(func(m string) string { return replaceLine(t, m, "Nonce: ", "abc") }), 400, "invalid_message"},
		{"bad Issued At", edited(func(m string) string { return replaceLine(t, m, "Issued At: ", "yesterday") }), 400, "invalid_message"},
		{"lowercase address in the message", edited(func(m string) string {
			a := regexp.MustCompile(`(?m)^0x[0-9a-fA-F]{40}$`).FindString(m)
			return strings.Replace(m, a, strings.ToLower(a), 1)
		}), 400, "invalid_message"},
		{"message not a string", post(`{"message": 1, "signature": "0x00"}`), 400, "invalid_json"},
		{"not JSON", post(`{"message": "`), 400, "invalid_json"},
		{"two JSON values", post(`{} {}`), 400, "invalid_json"},
		{"empty body", post(``), 400, "invalid_json"},
		{"body too large", post(`{"message": "` + strings.Repeat("a", 70<<10) + `"}`), 413, "body_too_large"},

		{"signature not hex", withSig(func([]byte) string { return "0x" + strings.Repeat("zz", 65) }), 400, "invalid_signature"},
		{"signature odd length", withSig(func(g []byte) string { return hex0x(g)[:131] }), 400, "invalid_signature"},
		{"signature 0x1234", withSig(func([]byte) string { return "0x1234" }), 400, "invalid_signature"},
		{"signature 0x", withSig(func([]byte) string { return "0x" }), 400, "invalid_signature"},
		{"signature missing", withSig(func([]byte) string { return "" }), 400, "invalid_signature"},
		{"signature 63 bytes", withSig(func(g []byte) string { return hex0x(g[:63]) }), 400, "invalid_signature"},
		{"signature 66 bytes", withSig(func(g []byte) string { return hex0x(append(append([]byte{}, g...), 0)) }), 400, "invalid_signature"},
		{"signature v=2", withSig(func(g []byte) string { b := append([]byte{}, g...); b[64] = 2; return hex0x(b) }), 400, "invalid_signature"},
		{"signature v=29", withSig(func(g []byte) string { b := append([]byte{}, g...); b[64] = 29; return hex0x(b) }), 400, "invalid_signature"},
		{"signature over 8 KiB", withSig(func([]byte) string { return "0x" + strings.Repeat("ab", 8193) }), 400, "invalid_signature"},
		// r = 0: the shape of a key signature, but no key made it.
		{"signature r zero", withSig(func(g []byte) string { b := append([]byte{}, g...); clear(b[:32]); return hex0x(b) }), 401, "signature_mismatch"},

		{"address form, bad address", post(map[string]string{"address": "0x1234", "signature": validSig}), 400, "invalid_address"},
		{"address form, bad checksum", post(map[string]string{"address": badChecksum, "signature": validSig}), 400, "invalid_address"},
		{"address form, no 0x", post(map[string]string{"address": valid.addr.Hex()[2:], "signature": validSig}), 400, "invalid_address"},
		{"address form, no challenge", post(map[string]string{"address": newSigner(t).addr.Hex(), "signature": validSig}), 401, "nonce_invalid"},
	})
	// The body above with a valid signature never used the nonce.
	wantLogin(t, e.login(t, validMsg, valid.sign(t, validMsg)), valid.addr, true)
}

func TestWalletLoginRejected(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	// self logs in a self-built message over a fresh nonce, edited.
	self := func(edit func(m *wallet.Message)) func(t *testing.T, e *env) *httptest.ResponseRecorder {
		return func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			msg := e.selfMessage(t, s.addr, e.nonce(t), edit)
			return e.login(t, msg, s.sign(t, msg))
		}
	}
	runLoginCases(t, e, []loginCase{
		{"wrong key", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s, msg, _ := signedChallenge(t, e, func(m string) string { return m })
			rec := e.login(t, msg, newSigner(t).sign(t, msg))
			wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, true) // the nonce survived
			return rec
		}, 401, "signature_mismatch"},
		{"wrong key, EIP-2098", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			_, msg, _ := signedChallenge(t, e, func(m string) string { return m })
			return e.login(t, msg, compact(newSigner(t).sign(t, msg)))
		}, 401, "signature_mismatch"},
		{"tampered statement", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			msg := e.challenge(t, s.addr.Hex()).Message
			sig := s.sign(t, msg)
			tampered := strings.Replace(msg, "Sign in to the example app.", "Sign in to the example app and give it all my tokens.", 1)
			rec := e.login(t, tampered, sig)
			wantLogin(t, e.login(t, msg, sig), s.addr, true) // the nonce is still usable
			return rec
		}, 401, "signature_mismatch"},
		{"signature over another challenge of the address", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			a, b := e.challenge(t, s.addr.Hex()), e.challenge(t, s.addr.Hex())
			return e.login(t, a.Message, s.sign(t, b.Message))
		}, 401, "signature_mismatch"},

		{"unknown nonce", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			msg := e.selfMessage(t, s.addr, "abcdefgh12345678abcdefgh")
			return e.login(t, msg, s.sign(t, msg))
		}, 401, "nonce_invalid"},
		{"replay", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s, msg, sig := signedChallenge(t, e, func(m string) string { return m })
			wantLogin(t, e.login(t, msg, sig), s.addr, true)
			return e.login(t, msg, sig)
		}, 401, "nonce_invalid"},
		{"replay of a self-built message", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			msg := e.selfMessage(t, s.addr, e.nonce(t))
			wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, true)
			return e.login(t, msg, with27(s.sign(t, msg)))
		}, 401, "nonce_invalid"},
		{"nonce issued to another address", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			other := e.challenge(t, newSigner(t).addr.Hex())
			s := newSigner(t)
			msg := e.selfMessage(t, s.addr, other.Nonce)
			return e.login(t, msg, s.sign(t, msg))
		}, 401, "nonce_invalid"},
		{"a challenge's nonce in another domain's message", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			_, msg, sig := signedChallenge(t, e, func(m string) string {
				return strings.Replace(m, testDomain+" wants", "evil.example.com wants", 1)
			})
			return e.login(t, msg, sig)
		}, 401, "domain_mismatch"},

		{"domain not allowed", self(func(m *wallet.Message) { m.Domain = "evil.example.com"; m.URI = "https://evil.example.com" }), 401, "domain_mismatch"},
		{"domain with another port", self(func(m *wallet.Message) { m.Domain = testDomain + ":8443"; m.URI = "https://" + testDomain + ":8443" }), 401, "domain_mismatch"},
		{"domain with userinfo", self(func(m *wallet.Message) { m.Domain = "me@" + testDomain }), 401, "domain_mismatch"},
		{"URI on another host", self(func(m *wallet.Message) { m.URI = "https://evil.example.com/login" }), 401, "domain_mismatch"},
		{"URI on a subdomain", self(func(m *wallet.Message) { m.URI = "https://x." + testDomain }), 401, "domain_mismatch"},
		{"URI without a host", self(func(m *wallet.Message) { m.URI = "urn:example:app" }), 401, "domain_mismatch"},
		{"chain not allowed", self(func(m *wallet.Message) { m.ChainID = 5 }), 401, "chain_not_allowed"},
		{"chain not allowed, unknown nonce too", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			s := newSigner(t)
			msg := e.selfMessage(t, s.addr, "unknownNonce12345678", func(m *wallet.Message) { m.ChainID = 10 })
			return e.login(t, msg, s.sign(t, msg))
		}, 401, "chain_not_allowed"},
		{"chain not allowed in a challenge", func(t *testing.T, e *env) *httptest.ResponseRecorder {
			_, msg, sig := signedChallenge(t, e, func(m string) string { return replaceLine(t, m, "Chain ID: ", "5") })
			return e.login(t, msg, sig)
		}, 401, "chain_not_allowed"},

		{"expired, no Not Before", self(func(m *wallet.Message) {
			m.IssuedAt = now.Add(-10 * time.Minute)
			m.ExpirationTime = ptr(now.Add(-31 * time.Second))
		}), 401, "message_expired"},
		{"expired, Not Before passed", self(func(m *wallet.Message) {
			m.IssuedAt = now.Add(-10 * time.Minute)
			m.NotBefore = ptr(now.Add(-5 * time.Minute))
			m.ExpirationTime = ptr(now.Add(-31 * time.Second))
		}), 401, "message_expired"},
		{"expired before it was valid", self(func(m *wallet.Message) {
			m.IssuedAt = now.Add(-10 * time.Minute)
			m.ExpirationTime = ptr(now.Add(-time.Minute))
			m.NotBefore = ptr(now.Add(-2 * time.Hour))
		}), 401, "message_expired"},
		// v1.1: no older than its nonce (30 s of skew).
		{"Issued At a year ago, no expiry", self(func(m *wallet.Message) { m.IssuedAt = now.AddDate(-1, 0, 0) }), 401, "message_expired"},
		{"Issued At 31 s before the nonce", self(func(m *wallet.Message) { m.IssuedAt = now.Add(-31 * time.Second) }), 401, "message_expired"},
		{"Issued At in the future", self(func(m *wallet.Message) { m.IssuedAt = now.Add(31 * time.Second) }), 401, "message_not_yet_valid"},
		{"Issued At in the future, Expiration later", self(func(m *wallet.Message) {
			m.IssuedAt = now.Add(time.Hour)
			m.ExpirationTime = ptr(now.Add(2 * time.Hour))
		}), 401, "message_not_yet_valid"},
		{"Not Before in the future", self(func(m *wallet.Message) { m.NotBefore = ptr(now.Add(31 * time.Second)) }), 401, "message_not_yet_valid"},
		{"Not Before in the future, Expiration later", self(func(m *wallet.Message) {
			m.NotBefore = ptr(now.Add(time.Minute))
			m.ExpirationTime = ptr(now.Add(time.Hour))
		}), 401, "message_not_yet_valid"},
	})

	t.Run("skew", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			edit func(m *wallet.Message)
		}{
			{"Issued At 20 s ahead", func(m *wallet.Message) { m.IssuedAt = now.Add(20 * time.Second) }},
			{"Issued At 30 s ahead", func(m *wallet.Message) { m.IssuedAt = now.Add(30 * time.Second) }},
			{"Not Before 20 s ahead", func(m *wallet.Message) { m.NotBefore = ptr(now.Add(20 * time.Second)) }},
			{"Expiration 20 s ago", func(m *wallet.Message) {
				m.IssuedAt = now.Add(-25 * time.Second)
				m.ExpirationTime = ptr(now.Add(-20 * time.Second))
			}},
			{"Issued At 30 s before the nonce", func(m *wallet.Message) { m.IssuedAt = now.Add(-30 * time.Second) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := newSigner(t)
				msg := e.selfMessage(t, s.addr, e.nonce(t), tc.edit)
				wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, true)
			})
		}
	})
}

// TestWalletLoginExpiry moves the injected clock past the challenge lifetime
// and the skew.
func TestWalletLoginExpiry(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	addrSig := map[string]string{"address": s.addr.Hex(), "signature": hex0x(s.sign(t, ch.Message))}
	self := e.selfMessage(t, s.addr, e.nonce(t)) // no Expiration Time

	e.clock.Advance(challengeTTL + skew - time.Second) // still within the skew
	live := e.selfMessage(t, s.addr, e.nonce(t))

	e.clock.Advance(time.Second)
	apitest.WantError(t, e.login(t, ch.Message, s.sign(t, ch.Message)), http.StatusUnauthorized, "message_expired")
	apitest.WantError(t, e.do(t, http.MethodPost, loginPath, addrSig, ""), http.StatusUnauthorized, "nonce_invalid")
	apitest.WantError(t, e.login(t, self, s.sign(t, self)), http.StatusUnauthorized, "nonce_invalid")
	// A nonce issued later lives its own lifetime.
	wantLogin(t, e.login(t, live, s.sign(t, live)), s.addr, true)
}

func TestWalletLoginWithinSkewOfExpiry(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	e.clock.Advance(challengeTTL + 20*time.Second) // Expiration Time 20 s ago
	wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, true)
}

func TestWalletLoginAddressCase(t *testing.T) {
	e := newEnv(t)
	s := newSigner(t)
	lower, upper := strings.ToLower(s.addr.Hex()), "0x"+strings.ToUpper(s.addr.Hex()[2:])
	upper0X := strings.ToUpper(s.addr.Hex())

	ch := e.challenge(t, lower)
	if !strings.Contains(ch.Message, "\n"+s.addr.Hex()+"\n") {
		t.Fatalf("challenge for %s does not name %s:\n%s", lower, s.addr.Hex(), ch.Message)
	}
	first := wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, true)

	for _, typed := range []string{lower, upper, upper0X, s.addr.Hex()} {
		for _, as := range []string{lower, upper, upper0X, s.addr.Hex()} {
			ch := e.challenge(t, typed)
			l := wantLogin(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": as, "signature": hex0x(s.sign(t, ch.Message))}, ""), s.addr, false)
			if l.User.ID != first.User.ID || len(l.User.Wallets) != 1 || *l.User.Address != s.addr.Hex() {
				t.Fatalf("challenge for %s, login as %s: user %+v, want the one user %s with one EIP-55 wallet", typed, as, l.User, first.User.ID)
			}
		}
	}
	// The self-built form, and the bytes in the store, agree.
	msg := e.selfMessage(t, s.addr, e.nonce(t))
	wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, false)
	for _, a := range []string{lower, upper} {
		u, err := e.users.GetByWallet(testCtx(t), common.HexToAddress(a).Bytes())
		if err != nil || u.ID != first.User.ID {
			t.Fatalf("GetByWallet(%s) = %v, %v", a, u, err)
		}
	}

	// In a message the address must be EIP-55: the EIP-4361 vectors refuse
	// an all-lowercase one.
	msg = strings.Replace(e.selfMessage(t, s.addr, e.nonce(t)), s.addr.Hex(), lower, 1)
	apitest.WantError(t, e.login(t, msg, s.sign(t, msg)), http.StatusBadRequest, "invalid_message")
}

func TestWalletLoginReferral(t *testing.T) {
	e := newEnv(t)
	referrer := e.mustLogin(t, newSigner(t))
	other := e.mustLogin(t, newSigner(t))

	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	body := map[string]string{"message": ch.Message, "signature": hex0x(s.sign(t, ch.Message)), "referral_code": "NOSUCHCODE"}
	apitest.WantError(t, e.do(t, http.MethodPost, loginPath, body, ""), http.StatusBadRequest, "invalid_referral_code")
	// The nonce stays usable; the code is taken as a person types it.
	body["referral_code"] = " " + strings.ToLower(referrer.User.ReferralCode) + " "
	l := wantLogin(t, e.do(t, http.MethodPost, loginPath, body, ""), s.addr, true)
	if l.User.Referrer == nil || *l.User.Referrer != referrer.User.Username {
		t.Fatalf("referrer %v, want %s", l.User.Referrer, referrer.User.Username)
	}
	me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, referrer.AuthToken))
	if me.RefereeCount != 1 {
		t.Fatalf("referrer's referee_count %d, want 1", me.RefereeCount)
	}

	// The address form checks the code before using the challenge up too.
	t2 := newSigner(t)
	ch2 := e.challenge(t, t2.addr.Hex())
	addrBody := map[string]string{"address": strings.ToLower(t2.addr.Hex()), "signature": hex0x(t2.sign(t, ch2.Message)), "referral_code": "NOSUCHCODE"}
	apitest.WantError(t, e.do(t, http.MethodPost, loginPath, addrBody, ""), http.StatusBadRequest, "invalid_referral_code")
	addrBody["referral_code"] = referrer.User.ReferralCode
	wantLogin(t, e.do(t, http.MethodPost, loginPath, addrBody, ""), t2.addr, true)
	me = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, referrer.AuthToken))
	if me.RefereeCount != 2 {
		t.Fatalf("referrer's referee_count %d, want 2", me.RefereeCount)
	}

	// A later login does not apply a code, valid or not.
	for _, code := range []string{other.User.ReferralCode, "NOSUCHCODE"} {
		ch := e.challenge(t, s.addr.Hex())
		l := wantLogin(t, e.do(t, http.MethodPost, loginPath, map[string]string{
			"message": ch.Message, "signature": hex0x(s.sign(t, ch.Message)), "referral_code": code}, ""), s.addr, false)
		if l.User.Referrer == nil || *l.User.Referrer != referrer.User.Username {
			t.Fatalf("login with code %s: referrer %v, want still %s", code, l.User.Referrer, referrer.User.Username)
		}
	}
	for _, u := range []apitest.Login{referrer, other} {
		me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, u.AuthToken))
		if want := int64(map[bool]int{true: 2}[u.User.ID == referrer.User.ID]); me.RefereeCount != want {
			t.Fatalf("%s referee_count %d, want %d", u.User.Username, me.RefereeCount, want)
		}
	}
}

// TestWalletLoginRateLimits: the limits count failed attempts, per address
// and per client IP, and refuse with 429 and Retry-After once reached.
func TestWalletLoginRateLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, withWallet(func(c *auth.WalletConfig) {
			c.PerAddress = auth.Rate{Max: 2, Window: time.Minute}
			c.PerIP = auth.Rate{Max: 100, Window: time.Minute}
		}))
		s := newSigner(t)
		for range 3 { // successes do not count
			e.mustLogin(t, s)
		}
		ch := e.challenge(t, s.addr.Hex())
		wrong := newSigner(t).sign(t, ch.Message)
		apitest.WantError(t, e.login(t, ch.Message, wrong), http.StatusUnauthorized, "signature_mismatch")
		apitest.WantError(t, e.login(t, ch.Message, wrong), http.StatusUnauthorized, "signature_mismatch")
		rec := e.login(t, ch.Message, s.sign(t, ch.Message))
		apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		if got := rec.Header().Get("Retry-After"); got != "60" {
			t.Fatalf("Retry-After %q, want 60", got)
		}
		// The address form and another letter case count against the same address.
		rec = e.do(t, http.MethodPost, loginPath, map[string]string{"address": strings.ToLower(s.addr.Hex()), "signature": hex0x(s.sign(t, ch.Message))}, "")
		apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		// Another address is not limited.
		e.mustLogin(t, newSigner(t))
		e.clock.Advance(40 * time.Second)
		if got := e.login(t, ch.Message, s.sign(t, ch.Message)).Header().Get("Retry-After"); got != "20" {
			t.Fatalf("Retry-After %q 40 s into the window, want 20", got)
		}
		e.clock.Advance(20 * time.Second)
		wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, false)
	})
	t.Run("per IP", func(t *testing.T) {
		e := newEnv(t, withWallet(func(c *auth.WalletConfig) {
			c.PerAddress = auth.Rate{Max: 100, Window: time.Minute}
			c.PerIP = auth.Rate{Max: 3, Window: time.Minute}
		}))
		for range 4 { // successes do not count
			e.mustLogin(t, newSigner(t))
		}
		apitest.WantError(t, e.do(t, http.MethodPost, loginPath, `{"message":"garbage","signature":"0x00"}`, ""), http.StatusBadRequest, "invalid_message")
		for range 2 {
			_, msg, _ := signedChallenge(t, e, func(m string) string { return m })
			apitest.WantError(t, e.login(t, msg, newSigner(t).sign(t, msg)), http.StatusUnauthorized, "signature_mismatch")
		}
		s := newSigner(t)
		ch := e.challenge(t, s.addr.Hex())
		rec := e.login(t, ch.Message, s.sign(t, ch.Message))
		apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		if rec.Header().Get("Retry-After") != "60" {
			t.Fatalf("Retry-After %q, want 60", rec.Header().Get("Retry-After"))
		}
		apitest.WantError(t, e.do(t, http.MethodPost, loginPath, `{"message":"garbage"}`, ""), http.StatusTooManyRequests, "rate_limited")
		e.clock.Advance(time.Minute)
		wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, true)
	})
}

// TestWalletChallengeRateLimit: issuing challenges and nonces counts per
// client IP (every one, not only failures: each is stored until it expires)
// and is refused with 429 and Retry-After past the limit.
func TestWalletChallengeRateLimit(t *testing.T) {
	e := newEnv(t, withWallet(func(c *auth.WalletConfig) {
		c.ChallengePerIP = auth.Rate{Max: 3, Window: time.Minute}
	}))
	s := newSigner(t)
	// Refused requests store nothing and do not count.
	for range 5 {
		apitest.WantError(t, e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address=0x1234", nil, ""), http.StatusBadRequest, "invalid_address")
	}
	e.challenge(t, s.addr.Hex())
	apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge", map[string]string{"address": s.addr.Hex()}, ""))
	e.nonce(t)
	for _, rec := range []*httptest.ResponseRecorder{
		e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, ""),
		e.do(t, http.MethodPost, "/v1/auth/wallet/challenge", map[string]string{"address": s.addr.Hex()}, ""),
		e.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil, ""),
	} {
		apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		if got := rec.Header().Get("Retry-After"); got != "60" {
			t.Fatalf("Retry-After %q, want 60", got)
		}
	}
	// Signing in with a challenge issued before is not limited by it.
	e.clock.Advance(time.Minute)
	ch := e.challenge(t, s.addr.Hex())
	for range 3 {
		e.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil, "")
	}
	wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, true)
	// Another client IP has its own count.
	rec := e.doFrom(t, "203.0.113.9", http.MethodGet, "/v1/auth/wallet/nonce", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("nonce from another IP: %d %s", rec.Code, rec.Body)
	}
}

// hangingChain is a fake wallet.ChainReader whose calls never answer: they
// block until their context ends, like an RPC node that does not respond.
type hangingChain struct{ calls atomic.Int64 }

func (h *hangingChain) CodeAt(ctx context.Context, _ common.Address, _ *big.Int) ([]byte, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hangingChain) CallContract(ctx context.Context, _ ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestWalletLoginRPCUnavailable(t *testing.T) {
	clock := newTestClock()
	hanging := &hangingChain{}
	v := wallet.NewContractVerifier(map[uint64]wallet.ChainReader{1: hanging}, 50*time.Millisecond, clock.Now)
	e := newEnv(t, withClock(clock), withContracts(v))

	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	good := s.sign(t, ch.Message)
	other := newSigner(t).sign(t, ch.Message)
	for name, sig := range map[string][]byte{
		"66 bytes by another key": append(append([]byte{}, other...), 0x01),
		"65 bytes by another key": other,
		"0x1234":                  {0x12, 0x34},
	} {
		t.Run(name, func(t *testing.T) {
			before := hanging.calls.Load()
			start := time.Now()
			apitest.WantError(t, e.login(t, ch.Message, sig), http.StatusServiceUnavailable, "rpc_unavailable")
			if hanging.calls.Load() == before {
				t.Fatal("the chain was not asked")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("answered after %v; the RPC timeout is 50 ms", d)
			}
		})
	}
	// A chain without RPC still answers as if none were configured.
	ch137 := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge", map[string]any{"address": s.addr.Hex(), "chain_id": 137}, ""))
	apitest.WantError(t, e.login(t, ch137.Message, append(s.sign(t, ch137.Message), 0)), http.StatusBadRequest, "invalid_signature")
	apitest.WantError(t, e.login(t, ch137.Message, newSigner(t).sign(t, ch137.Message)), http.StatusUnauthorized, "signature_mismatch")
	// The key signature needs no RPC, and the nonce was never used up.
	before := hanging.calls.Load()
	wantLogin(t, e.login(t, ch.Message, good), s.addr, true)
	if hanging.calls.Load() != before {
		t.Fatal("a key signature asked the chain")
	}
}

func TestWalletStoreUnavailable(t *testing.T) {
	t.Run("closed store", func(t *testing.T) {
		for _, limits := range []bool{false, true} {
			t.Run(map[bool]string{false: "no limits", true: "limits"}[limits], func(t *testing.T) {
				clock := newTestClock()
				st := kv.NewMemory(clock.Now)
				e := newEnv(t, withClock(clock), withStore(st), withWallet(func(c *auth.WalletConfig) {
					if limits {
						c.PerAddress = auth.Rate{Max: 10, Window: time.Minute}
						c.PerIP = auth.Rate{Max: 10, Window: time.Minute}
					}
				}))
				s := newSigner(t)
				known := e.mustLogin(t, s)
				ch := e.challenge(t, s.addr.Hex())
				self := e.selfMessage(t, s.addr, e.nonce(t))
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				apitest.WantError(t, e.login(t, ch.Message, s.sign(t, ch.Message)), http.StatusServiceUnavailable, "unavailable")
				apitest.WantError(t, e.login(t, self, s.sign(t, self)), http.StatusServiceUnavailable, "unavailable")
				apitest.WantError(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(s.sign(t, ch.Message))}, ""),
					http.StatusServiceUnavailable, "unavailable")
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, ""), http.StatusServiceUnavailable, "unavailable")
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil, ""), http.StatusServiceUnavailable, "unavailable")
				// Token checks do not need the store.
				apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, known.AuthToken))
			})
		}
	})
	t.Run("redis down", func(t *testing.T) {
		client, err := kv.NewRedisClient("redis://127.0.0.1:1/0")
		if err != nil {
			t.Fatal(err)
		}
		st := kv.NewRedis(client, "walletauth-test-down:")
		t.Cleanup(func() { _ = st.Close() })
		e := newEnv(t, withStore(st))
		s := newSigner(t)
		msg := e.selfMessage(t, s.addr, "abcdefgh12345678ABCDEFGH")
		apitest.WantError(t, e.login(t, msg, s.sign(t, msg)), http.StatusServiceUnavailable, "unavailable")
		apitest.WantError(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(s.sign(t, msg))}, ""),
			http.StatusServiceUnavailable, "unavailable")
		apitest.WantError(t, e.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, ""), http.StatusServiceUnavailable, "unavailable")
		apitest.WantError(t, e.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil, ""), http.StatusServiceUnavailable, "unavailable")
	})
}

func TestWalletLinking(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testWalletLinking(t, newEnv(t, b.open(t)...)) })
	}
}

func testWalletLinking(t *testing.T, e *env) {
	w1, w2, w3, w4 := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	owner := e.mustLogin(t, w1)
	tok := owner.AuthToken
	link := func(s signer) *httptest.ResponseRecorder {
		e.clock.Advance(time.Minute) // linked_at orders the wallets
		return e.do(t, http.MethodPost, "/v1/users/me/wallets", e.linkBody(t, s), tok)
	}
	wallets := func(u apitest.User) map[common.Address]apitest.Wallet {
		m := map[common.Address]apitest.Wallet{}
		for _, w := range u.Wallets {
			m[common.HexToAddress(w.Address)] = w
		}
		return m
	}
	wantPrimary := func(t *testing.T, u apitest.User, p signer, n int) {
		t.Helper()
		ws := wallets(u)
		if len(u.Wallets) != n || u.Address == nil || *u.Address != p.addr.Hex() {
			t.Fatalf("user %+v, want %d wallets, primary %s", u, n, p.addr.Hex())
		}
		for a, w := range ws {
			if w.Primary != (a == p.addr) || w.Address != a.Hex() {
				t.Fatalf("wallet %+v: primary %v, want %v, EIP-55", w, w.Primary, a == p.addr)
			}
		}
	}

	u := apitest.DecodeOK[apitest.User](t, link(w2))
	wantPrimary(t, u, w1, 2) // linking does not change the primary
	if w := wallets(u)[w2.addr]; w.Type != "eoa" || w.ChainID != 1 || w.LinkedAt != e.clock.Now().Format(time.RFC3339) {
		t.Fatalf("linked wallet %+v", w)
	}
	wantPrimary(t, apitest.DecodeOK[apitest.User](t, link(w3)), w1, 3)

	// The linked wallet logs in to the same user.
	if l := wantLogin(t, e.loginRec(t, w2), w2.addr, false); l.User.ID != owner.User.ID {
		t.Fatalf("linked wallet logs in to user %s, want %s", l.User.ID, owner.User.ID)
	}

	u = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodPut, "/v1/users/me/wallets/"+strings.ToLower(w3.addr.Hex())+"/primary", nil, tok))
	wantPrimary(t, u, w3, 3)
	u = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+w1.addr.Hex(), nil, tok))
	wantPrimary(t, u, w3, 2)
	wantPrimary(t, apitest.DecodeOK[apitest.User](t, link(w4)), w3, 3)
	// Unlinking the primary makes the oldest remaining wallet (w2, not w4) primary.
	u = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+w3.addr.Hex(), nil, tok))
	wantPrimary(t, u, w2, 2)
	me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, tok))
	wantPrimary(t, me, w2, 2)

	// Someone else's wallet.
	stranger := newSigner(t)
	theirs := e.mustLogin(t, stranger)
	body := e.linkBody(t, stranger)
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/wallets", body, tok), http.StatusConflict, "wallet_taken")
	apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+stranger.addr.Hex(), nil, tok), http.StatusNotFound, "wallet_not_found")
	apitest.WantError(t, e.do(t, http.MethodPut, "/v1/users/me/wallets/"+stranger.addr.Hex()+"/primary", nil, tok), http.StatusNotFound, "wallet_not_found")
	// The refused link did not use up the stranger's challenge.
	wantLogin(t, e.do(t, http.MethodPost, loginPath, body, ""), stranger.addr, false)

	unknown := newSigner(t).addr.Hex()
	apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+unknown, nil, tok), http.StatusNotFound, "wallet_not_found")
	apitest.WantError(t, e.do(t, http.MethodPut, "/v1/users/me/wallets/"+unknown+"/primary", nil, tok), http.StatusNotFound, "wallet_not_found")
	apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/0x1234", nil, tok), http.StatusBadRequest, "invalid_address")
	apitest.WantError(t, e.do(t, http.MethodPut, "/v1/users/me/wallets/nope/primary", nil, tok), http.StatusBadRequest, "invalid_address")
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/wallets", e.linkBody(t, newSigner(t)), ""), http.StatusUnauthorized, "unauthorized")
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/wallets", `{"message":"x","signature":"0x00"}`, tok), http.StatusBadRequest, "invalid_message")
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/wallets", `{"message":`, tok), http.StatusBadRequest, "invalid_json")
	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/wallets", map[string]string{"message": ch.Message, "signature": hex0x(newSigner(t).sign(t, ch.Message))}, tok),
		http.StatusUnauthorized, "signature_mismatch")

	// The last way to log in cannot go.
	u = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+w2.addr.Hex(), nil, tok))
	wantPrimary(t, u, w4, 1)
	apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+w4.addr.Hex(), nil, tok), http.StatusConflict, "last_login_method")
	apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+theirs.User.Wallets[0].Address, nil, theirs.AuthToken), http.StatusConflict, "last_login_method")

	// With an email login, the only wallet can go.
	if _, err := e.users.SetEmail(testCtx(t), theirs.User.ID, "stranger@example.com", "$argon2id$placeholder"); err != nil {
		t.Fatal(err)
	}
	u = apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+strings.ToLower(stranger.addr.Hex()), nil, theirs.AuthToken))
	if u.Address != nil || len(u.Wallets) != 0 || u.Email == nil {
		t.Fatalf("after unlinking the only wallet: %+v", u)
	}
	// The unlinked wallet is free: a login creates a new user for it.
	l := wantLogin(t, e.loginRec(t, stranger), stranger.addr, true)
	if l.User.ID == theirs.User.ID {
		t.Fatal("an unlinked wallet still logs in to its old user")
	}
}

// A returning sign-in whose owner is cached writes its session only if the
// database agrees on the owner: when another instance (whose invalidations
// never arrive here) has moved the wallet to another user or unlinked it,
// the stale record is not signed in to.
func TestWalletLoginStaleOwnerHint(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, append(b.open(t), withUserCache())...)
			other := users.NewStore(e.db, e.clock.Now, nil) // another instance
			ctx := testCtx(t)
			w, spare := newSigner(t), newSigner(t)
			a := e.mustLogin(t, w).User
			wantLogin(t, e.loginRec(t, w), w.addr, false) // caches a as w's owner
			if u, ok := e.users.CachedByWallet(w.addr.Bytes()); !ok || u.ID != a.ID {
				t.Fatalf("CachedByWallet = %v, %v; want the hint this test is about", u, ok)
			}
			l := wantLogin(t, e.loginRec(t, w), w.addr, false)
			if l.User.ID != a.ID {
				t.Fatalf("logged in to %s, want %s", l.User.ID, a.ID)
			}
			sessionsOf := func(id string) int64 {
				var n int64
				if err := e.db.Model(&auth.Session{}).Where("user_id = ?", id).Count(&n).Error; err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := sessionsOf(a.ID); n != 3 {
				t.Fatalf("a has %d sessions, want 3", n)
			}

			// Elsewhere: a keeps a spare wallet, w moves to a new user b.
			if _, err := other.AddWallet(ctx, users.Wallet{Address: spare.addr.Bytes(), UserID: a.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.RemoveWallet(ctx, a.ID, w.addr.Bytes()); err != nil {
				t.Fatal(err)
			}
			bu, err := other.Create(ctx, users.NewUser{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.AddWallet(ctx, users.Wallet{Address: w.addr.Bytes(), UserID: bu.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
				t.Fatal(err)
			}
			if u, ok := e.users.CachedByWallet(w.addr.Bytes()); !ok || u.ID != a.ID {
				t.Fatalf("the hint here should still (wrongly) name a: %v, %v", u, ok)
			}
			l = wantLogin(t, e.loginRec(t, w), w.addr, false)
			if l.User.ID != bu.ID {
				t.Fatalf("w logs in to %s after moving to %s", l.User.ID, bu.ID)
			}
			me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, l.AuthToken))
			if me.ID != bu.ID {
				t.Fatalf("the token is %s's, want %s's", me.ID, bu.ID)
			}
			if n := sessionsOf(a.ID); n != 3 {
				t.Fatalf("a has %d sessions after w moved, want still 3", n)
			}

			// Elsewhere again: w unlinked from b (b keeps another wallet).
			if _, err := other.AddWallet(ctx, users.Wallet{Address: newSigner(t).addr.Bytes(), UserID: bu.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.RemoveWallet(ctx, bu.ID, w.addr.Bytes()); err != nil {
				t.Fatal(err)
			}
			if u, ok := e.users.CachedByWallet(w.addr.Bytes()); !ok || u.ID != bu.ID {
				t.Fatalf("the hint here should still (wrongly) name b: %v, %v", u, ok)
			}
			l = wantLogin(t, e.loginRec(t, w), w.addr, true)
			if l.User.ID == a.ID || l.User.ID == bu.ID {
				t.Fatalf("an unlinked wallet logged in to its old user %s", l.User.ID)
			}
		})
	}
}

// A wallet that moves to another user between the database lookup of a
// returning sign-in and its session INSERT signs in to its new owner: the
// INSERT checks the owner, and the lookup is made again.
func TestWalletLoginOwnerChangesDuringSignIn(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...) // no user cache: every lookup reads the database
			other := users.NewStore(e.db, e.clock.Now, nil)
			ctx := testCtx(t)
			w, spare := newSigner(t), newSigner(t)
			a := e.mustLogin(t, w).User
			if _, err := other.AddWallet(ctx, users.Wallet{Address: spare.addr.Bytes(), UserID: a.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
				t.Fatal(err)
			}
			bu, err := other.Create(ctx, users.NewUser{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			inserts := 0
			auth.SetBeforeSessionInsert(e.sessions, func(int) {
				inserts++
				if inserts > 1 {
					return
				}
				// After the lookup found a, before the session is written.
				if _, err := other.RemoveWallet(ctx, a.ID, w.addr.Bytes()); err != nil {
					t.Error(err)
				}
				if _, err := other.AddWallet(ctx, users.Wallet{Address: w.addr.Bytes(), UserID: bu.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
					t.Error(err)
				}
			})
			l := wantLogin(t, e.loginRec(t, w), w.addr, false)
			if l.User.ID != bu.ID {
				t.Fatalf("signed in to %s, want the new owner %s", l.User.ID, bu.ID)
			}
			if inserts != 2 {
				t.Fatalf("%d session INSERTs, want 2 (refused for a, written for b)", inserts)
			}
			var n int64
			if err := e.db.Model(&auth.Session{}).Where("user_id = ?", a.ID).Count(&n).Error; err != nil || n != 1 {
				t.Fatalf("a has %d sessions (%v), want only its first", n, err)
			}
		})
	}
}

// concurrency of logins, on every backend.
func TestWalletLoginConcurrent(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			t.Run("one message, 20 requests", func(t *testing.T) {
				s := newSigner(t)
				ch := e.challenge(t, s.addr.Hex())
				sig := s.sign(t, ch.Message)
				const n = 20
				recs := make([]*httptest.ResponseRecorder, n)
				parallel(n, func(i int) { recs[i] = e.login(t, ch.Message, sig) })
				ok := 0
				for _, rec := range recs {
					if rec.Code == http.StatusOK {
						ok++
						wantLogin(t, rec, s.addr, true)
						continue
					}
					apitest.WantError(t, rec, http.StatusUnauthorized, "nonce_invalid")
				}
				if ok != 1 {
					t.Fatalf("%d of %d concurrent logins with one nonce succeeded, want exactly 1", ok, n)
				}
			})
			t.Run("first logins of one address, 10 challenges", func(t *testing.T) {
				s := newSigner(t)
				const n = 10
				msgs := make([]string, n)
				for i := range msgs {
					msgs[i] = e.challenge(t, s.addr.Hex()).Message
				}
				sigs := make([][]byte, n)
				for i, m := range msgs {
					sigs[i] = s.sign(t, m)
				}
				// On PostgreSQL every request looks the wallet's owner up
				// (users.Store.GetByWallet) before any creates it. SQLite's
				// one connection serializes the requests, and a held read
				// would hold it, so there the race happens as it comes.
				var bar *barrier
				if e.db.Dialect == storage.Postgres {
					bar = armBarrier(t, e.db, func(st *gorm.Statement) bool {
						return strings.Contains(st.SQL.String(), "SELECT user_id FROM wallets WHERE address")
					}, n)
				}
				recs := make([]*httptest.ResponseRecorder, n)
				parallel(n, func(i int) { recs[i] = e.login(t, msgs[i], sigs[i]) })
				if bar != nil && bar.held() != n {
					t.Fatalf("%d of %d requests looked the wallet up", bar.held(), n)
				}
				created, ids := 0, map[string]bool{}
				for _, rec := range recs {
					l := apitest.DecodeOK[apitest.Login](t, rec)
					if *l.Created {
						created++
					}
					ids[l.User.ID] = true
				}
				if created != 1 || len(ids) != 1 {
					t.Fatalf("%d created, %d users; want exactly 1 and 1", created, len(ids))
				}
			})
		})
	}
}

// The smart-contract wallet test chain: go-ethereum's simulated backend with
// a funded deployer, and the contracts committed in wallet/testdata.
const simChainID = 1337

type simChain struct {
	backend  *simulated.Backend
	client   simulated.Client
	deployer signer
}

func newSimChain(tb testing.TB) *simChain {
	tb.Helper()
	deployer := newSigner(tb)
	funds := new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))
	backend := simulated.NewBackend(types.GenesisAlloc{deployer.addr: {Balance: funds}})
	tb.Cleanup(func() { _ = backend.Close() })
	return &simChain{backend: backend, client: backend.Client(), deployer: deployer}
}

// deploy deploys a compiled test contract of wallet/testdata/contracts with
// constructor args (as wallet/contract_test.go does) and mines it.
func (c *simChain) deploy(tb testing.TB, name string, args ...any) common.Address {
	tb.Helper()
	ctx := context.Background()
	dir := filepath.Join("..", "wallet", "testdata", "contracts")
	rawABI, err := os.ReadFile(filepath.Join(dir, name+".abi"))
	if err != nil {
		tb.Fatalf("read ABI: %v", err)
	}
	parsed, err := abi.JSON(strings.NewReader(string(rawABI)))
	if err != nil {
		tb.Fatalf("parse %s ABI: %v", name, err)
	}
	rawBin, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	if err != nil {
		tb.Fatalf("read bytecode: %v", err)
	}
	ctor, err := parsed.Pack("", args...)
	if err != nil {
		tb.Fatalf("pack %s constructor: %v", name, err)
	}
	data := append(common.FromHex(strings.TrimSpace(string(rawBin))), ctor...)
	nonce, err := c.client.PendingNonceAt(ctx, c.deployer.addr)
	if err != nil {
		tb.Fatalf("nonce: %v", err)
	}
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		tb.Fatalf("head: %v", err)
	}
	tip := big.NewInt(1e9)
	tx, err := types.SignNewTx(c.deployer.key, types.LatestSignerForChainID(big.NewInt(simChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(simChainID), Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas:       5_000_000, Data: data,
	})
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	if err := c.client.SendTransaction(ctx, tx); err != nil {
		tb.Fatalf("send: %v", err)
	}
	c.backend.Commit()
	receipt, err := c.client.TransactionReceipt(ctx, tx.Hash())
	if err != nil || receipt.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("deploy %s: receipt %+v, %v", name, receipt, err)
	}
	return receipt.ContractAddress
}

func TestWalletLoginContractWallet(t *testing.T) {
	chain := newSimChain(t)
	owner := newSigner(t)
	contract := chain.deploy(t, "OwnedWallet", owner.addr)
	clock := newTestClock()
	v := wallet.NewContractVerifier(map[uint64]wallet.ChainReader{simChainID: chain.client}, 5*time.Second, clock.Now)
	e := newEnv(t, withClock(clock), withContracts(v), withWallet(func(c *auth.WalletConfig) {
		c.ChainIDs = []uint64{1, simChainID}
	}))

	ch := apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
		map[string]any{"address": contract.Hex(), "chain_id": simChainID}, ""))
	apitest.WantError(t, e.login(t, ch.Message, newSigner(t).sign(t, ch.Message)), http.StatusUnauthorized, "signature_mismatch")
	apitest.WantError(t, e.login(t, ch.Message, append(newSigner(t).sign(t, ch.Message), 0)), http.StatusUnauthorized, "signature_mismatch")
	l := wantLogin(t, e.login(t, ch.Message, with27(owner.sign(t, ch.Message))), contract, true)
	if w := l.User.Wallets[0]; w.Type != "contract" || w.ChainID != simChainID || !w.Primary {
		t.Fatalf("contract wallet %+v, want type contract on chain %d", w, simChainID)
	}
	// The owner key's own address is another wallet, key-signed.
	ownerLogin := e.mustLogin(t, owner)
	if ownerLogin.User.ID == l.User.ID || ownerLogin.User.Wallets[0].Type != "eoa" {
		t.Fatalf("owner's login %+v", ownerLogin.User)
	}
	// On a chain without the contract, the owner's signature is no proof.
	ch1 := e.challenge(t, contract.Hex())
	apitest.WantError(t, e.login(t, ch1.Message, owner.sign(t, ch1.Message)), http.StatusUnauthorized, "signature_mismatch")
	// A second login through the address form.
	ch = apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
		map[string]any{"address": contract.Hex(), "chain_id": simChainID}, ""))
	wantLogin(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": contract.Hex(), "signature": hex0x(owner.sign(t, ch.Message))}, ""), contract, false)
}

func BenchmarkChallenge(b *testing.B) {
	e := newEnv(b)
	s := newSigner(b)
	path := "/v1/auth/wallet/challenge?address=" + s.addr.Hex()
	b.ReportAllocs()
	for b.Loop() {
		if rec := e.do(b, http.MethodGet, path, nil, ""); rec.Code != http.StatusOK {
			b.Fatalf("challenge: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkWalletLogin measures challenge + sign + login through the router
// (SQLite, in-memory store, no rate limits).
func BenchmarkWalletLogin(b *testing.B) {
	b.Run("returning", func(b *testing.B) {
		e := newEnv(b)
		s := newSigner(b)
		e.mustLogin(b, s)
		b.ReportAllocs()
		for b.Loop() {
			e.mustLogin(b, s)
		}
	})
	b.Run("new", func(b *testing.B) {
		e := newEnv(b)
		b.ReportAllocs()
		for b.Loop() {
			if l := e.mustLogin(b, newSigner(b)); !*l.Created {
				b.Fatal("not created")
			}
		}
	})
}
