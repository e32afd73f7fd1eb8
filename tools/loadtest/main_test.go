package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// runJSON runs the tool with args and -json and decodes its result.
func runJSON(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(append(args, "-json"), &out, &errOut); err != nil {
		t.Fatalf("run %q: %v (stderr %s)", args, err, errOut.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	return res
}

// The bare scenario counts 2xx answers as ok and others by status, with
// every request really sent (the server counts them).
func TestBareScenario(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/fail" {
			http.Error(w, `{"error":"x"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()

	res := runJSON(t, "-scenario", "bare", "-target", srv.URL, "-path", "/ok", "-c", "4", "-n", "200", "-duration", "10s")
	if res.Ops != 200 || res.OK != 200 || len(res.Errors) != 0 || served.Load() != 200 {
		t.Fatalf("ok run: ops %d ok %d errors %v, server saw %d; want 200, 200, none, 200", res.Ops, res.OK, res.Errors, served.Load())
	}
	res = runJSON(t, "-scenario", "bare", "-target", srv.URL, "-path", "/fail", "-c", "2", "-n", "50", "-duration", "10s")
	if res.OK != 0 || res.Errors["503"] != 50 {
		t.Fatalf("failing run: ok %d errors %v; want 0 and 50 × 503", res.OK, res.Errors)
	}
}

func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1"} {
		err := run([]string{"-scenario", "bare", "-target", target, "-n", "1"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-target") {
			t.Errorf("-target %s: err = %v, want a refusal", target, err)
		}
	}
}

// decode reads the answers the wallet scenario needs with fastjson as
// encoding/json would, and refuses what is not there.
func TestDecodeFast(t *testing.T) {
	var ch challengeResp
	body := `{"message":"example.com wants you to sign in\nwith \u003cyour\u003e key \"x\"","nonce":"abc123","expires_at":"2026-01-01T00:00:00Z"}`
	if err := decode([]byte(body), &ch); err != nil {
		t.Fatal(err)
	}
	var want challengeResp
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	if ch != want {
		t.Fatalf("decode = %+v, want %+v", ch, want)
	}
	var lr loginResp
	if err := decode([]byte(`{"auth_token":"wat_x","user":{"id":"u","wallets":[{"a":1}]},"created":true}`), &lr); err != nil || lr != (loginResp{AuthToken: "wat_x", Created: true}) {
		t.Fatalf("decode = %+v, %v", lr, err)
	}
	for _, bad := range []string{
		`{"auth_token":"wat_x"}`,                 // no created
		`{"created":false}`,                      // no token
		`{"auth_token":1,"created":false}`,       // not a string
		`{"auth_token":"wat_x","created":"yes"}`, // not a bool
		`{"auth_token":"wat_x","created":false`,  // cut short
		`{"auth_token":"wat_x","created":false} x`,
	} {
		if err := decode([]byte(bad), &loginResp{}); err == nil {
			t.Errorf("decode(%s) = nil, want an error", bad)
		}
	}
}

// The service rules the tool restates (eth.go) agree with go-ethereum and
// the server: the EIP-191 hash, recovery of crypto.Sign's signature, and
// which hosts count as loopback.
func TestRestatedServiceRules(t *testing.T) {
	msg := []byte("127.0.0.1:8080 wants you to sign in with your Ethereum account:\n0x00\n\nNonce: benchNonce00000000000001")
	if got, want := hashEIP191(msg), common.BytesToHash(accounts.TextHash(msg)); got != want {
		t.Fatalf("hashEIP191 = %s, want accounts.TextHash %s", got, want)
	}
	k, err := newKey("restated", 1)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := crypto.Sign(hashEIP191(msg).Bytes(), k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := recoverAddress(hashEIP191(msg), sig); err != nil || got != crypto.PubkeyToAddress(k.PublicKey) {
		t.Fatalf("recoverAddress = %s, %v; want %s", got, err, crypto.PubkeyToAddress(k.PublicKey))
	}
	if got, err := recoverAddress(hashEIP191(append(msg, '!')), sig); err == nil && got == crypto.PubkeyToAddress(k.PublicKey) {
		t.Fatal("recoverAddress of another message gave the signer")
	}
	if _, err := recoverAddress(hashEIP191(msg), sig[:64]); err == nil {
		t.Fatal("recoverAddress of 64 bytes: want an error")
	}
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.1": true, "::1": true, "::ffff:127.0.0.1": true,
		"10.0.0.1": false, "example.com": false, "": false, "0.0.0.0": false, "localhost.example.com": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
