package main

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
)

// The message is the EIP-4361 text GoTrue parses, line for line, and the
// signature over it recovers the address it names.
func TestSiweMessage(t *testing.T) {
	k, err := newKey("gotrue", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(k.PublicKey).Hex()
	at := time.Date(2026, 1, 22, 8, 36, 58, 123456789, time.FixedZone("CET", 3600))
	got := siweMessage("localhost:18190", "http://localhost:18190", addr, "abcdef0123456789", at)
	want := "localhost:18190 wants you to sign in with your Ethereum account:\n" + addr + "\n\n" +
		"Sign in with your wallet.\n\n" +
		"URI: http://localhost:18190\nVersion: 1\nChain ID: 1\nNonce: abcdef0123456789\n" +
		"Issued At: 2026-01-22T07:36:58Z\nExpiration Time: 2026-01-22T07:41:58Z"
	if got != want {
		t.Fatalf("siweMessage =\n%s\nwant\n%s", got, want)
	}
	sig, err := signEIP191(k, got)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(sig, "0x"))
	if err != nil || len(raw) != 65 || (raw[64] != 27 && raw[64] != 28) {
		t.Fatalf("signature %s: want 0x + 130 hex digits with v in {27, 28}", sig)
	}
	raw[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash([]byte(got)), raw)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != addr {
		t.Fatalf("signature recovers %v, %v; want %s", pub, err, addr)
	}

	for base, want := range map[string][2]string{
		"http://127.0.0.1:18190": {"localhost:18190", "http://localhost:18190"},
		"http://localhost":       {"localhost", "http://localhost"},
	} {
		d, u, err := gotrueOrigin(base)
		if err != nil || d != want[0] || u != want[1] {
			t.Errorf("gotrueOrigin(%s) = %q, %q, %v; want %q, %q", base, d, u, err, want[0], want[1])
		}
	}
}

// A sign-in counts as created when GoTrue stamped created_at and
// last_sign_in_at together (answers as GoTrue gave them).
func TestGotrueTokenDecode(t *testing.T) {
	for body, created := range map[string]bool{
		`{"access_token":"eyJ.a.b","user":{"created_at":"2026-12-03T13:50:56.433019Z","last_sign_in_at":"2026-12-03T13:50:56.436043722Z"}}`: true,
		`{"access_token":"eyJ.a.b","user":{"created_at":"2026-12-03T13:50:56.433019Z","last_sign_in_at":"2026-12-03T13:50:58.195913791Z"}}`: false,
	} {
		var tr gotrueTokenResp
		if err := decode([]byte(body), &tr); err != nil || tr.AccessToken != "eyJ.a.b" || tr.Created != created {
			t.Errorf("decode(%s) = %+v, %v; want created %v", body, tr, err, created)
		}
	}
	for _, bad := range []string{
		`{"user":{"created_at":"2026-12-03T13:50:56Z","last_sign_in_at":"2026-12-03T13:50:56Z"}}`,
		`{"access_token":"x"}`,
		`{"access_token":"x","user":{"created_at":"2026-12-03T13:50:56Z"}}`,
		`{"access_token":"x","user":{"created_at":"yesterday","last_sign_in_at":"2026-12-03T13:50:56Z"}}`,
	} {
		if err := decode([]byte(bad), &gotrueTokenResp{}); err == nil {
			t.Errorf("decode(%s) = nil, want an error", bad)
		}
	}
}

// fakeGotrue answers the web3 grant after the checks GoTrue's handler
// makes (internal/api/web3.go, utilities/siwe) and GET /user for the
// tokens it issued.
func fakeGotrue(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	users := map[string]time.Time{} // address → created_at
	tokens := map[string]bool{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(msg string) {
			t.Errorf("fake gotrue: %s", msg)
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/user":
			mu.Lock()
			ok := tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			mu.Unlock()
			if !ok {
				http.Error(w, `{"code":403}`, http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte(`{"id":"u"}`))
		case r.Method == http.MethodPost && r.URL.Path == "/token" && r.URL.Query().Get("grant_type") == "web3":
			var p gotrueWeb3Body
			if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Chain != "ethereum" {
				fail("body " + err.Error())
				return
			}
			lines := strings.Split(p.Message, "\n")
			fields := map[string]string{}
			for _, l := range lines[3:] {
				if k, v, ok := strings.Cut(l, ": "); ok {
					fields[k] = v
				}
			}
			host := strings.TrimPrefix(r.Host, "127.0.0.1")
			issued, err := time.Parse(time.RFC3339, fields["Issued At"])
			switch {
			case len(p.Message) < 64 || len(lines) < 6 || lines[2] != "":
				fail("short message")
			case lines[0] != "localhost"+host+" wants you to sign in with your Ethereum account:":
				fail("header " + lines[0])
			case fields["URI"] != "http://localhost"+host || fields["Version"] != "1" || fields["Chain ID"] != "1" || len(fields["Nonce"]) < 8:
				fail("fields " + p.Message)
			case err != nil || time.Since(issued).Abs() > 10*time.Minute:
				fail("issued at " + fields["Issued At"])
			default:
				sig, err := hex.DecodeString(strings.TrimPrefix(p.Signature, "0x"))
				if err != nil || len(sig) != 65 {
					fail("signature " + p.Signature)
					return
				}
				sig[64] -= 27
				pub, err := crypto.SigToPub(accounts.TextHash([]byte(p.Message)), sig)
				if err != nil || !strings.EqualFold(crypto.PubkeyToAddress(*pub).Hex(), lines[1]) {
					fail("signer")
					return
				}
				now := time.Now().UTC()
				mu.Lock()
				// A repeat within the run gets the real created_at, well
				// within createdWithin: the scenario must count it itself.
				created, ok := users[lines[1]]
				if !ok {
					created = now
					users[lines[1]] = now
				}
				tok := "tok-" + lines[1] + fields["Nonce"]
				tokens[tok] = true
				mu.Unlock()
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer",
					"user": map[string]any{"created_at": created, "last_sign_in_at": now}})
			}
		default:
			http.NotFound(w, r)
		}
	}))
}

// The GoTrue scenarios sign in as GoTrue requires, count first and
// returning sign-ins, and check the token they got.
func TestGotrueScenarios(t *testing.T) {
	srv := fakeGotrue(t)
	defer srv.Close()
	res := runJSON(t, "-scenario", "gotrue-web3", "-target", srv.URL, "-keys", "10", "-seed", "gt", "-c", "3", "-n", "25", "-duration", "10s")
	if res.OK != 25 || res.Extra["created"] != 10 || res.Extra["returning"] != 15 {
		t.Fatalf("gotrue-web3: ok %d extra %v errors %v (%s); want 25 ok, 10 created, 15 returning", res.OK, res.Extra, res.Errors, res.FirstError)
	}
	res = runJSON(t, "-scenario", "gotrue-user", "-target", srv.URL, "-c", "2", "-n", "20", "-duration", "10s")
	if res.OK != 20 {
		t.Fatalf("gotrue-user: ok %d errors %v (%s); want 20", res.OK, res.Errors, res.FirstError)
	}
}
