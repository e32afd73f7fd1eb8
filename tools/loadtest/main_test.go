package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// fakeWalletServer answers the wallet challenge and login as the service
// does for the load tool's needs: the challenge names the address, the
// login recovers the signer of the message and checks it is that address,
// and answers created for an address it has not seen. It counts the
// sign-ins of each address.
func fakeWalletServer(t *testing.T) (*httptest.Server, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	signIns := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/auth/wallet/challenge":
			addr := r.URL.Query().Get("address")
			msg := fmt.Sprintf(sampleMessage, addr, "fakeNonce"+addr[2:10])
			_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "nonce": "n"})
		case "/v1/auth/wallet/login":
			var body walletLoginBody
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
				return
			}
			sig, err := hex.DecodeString(strings.TrimPrefix(body.Signature, "0x"))
			if err != nil || len(sig) != 65 {
				http.Error(w, `{"error":"bad_signature"}`, http.StatusBadRequest)
				return
			}
			sig[64] -= 27
			lines := strings.Split(body.Message, "\n")
			got, err := recoverAddress(hashEIP191([]byte(body.Message)), sig)
			if err != nil || len(lines) < 2 || got.Hex() != lines[1] {
				http.Error(w, `{"error":"signature_mismatch"}`, http.StatusUnauthorized)
				return
			}
			mu.Lock()
			signIns[lines[1]]++
			created := signIns[lines[1]] == 1
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"auth_token": "wat_" + lines[1], "created": created})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(signIns)
	}
}

// The burst scenario signs in each of its -keys keys exactly once, stops
// there however large -n is, and counts every sign-in as created on a
// server that has not seen the keys.
func TestBurstSignsInEveryKeyOnce(t *testing.T) {
	srv, signIns := fakeWalletServer(t)
	res := runJSON(t, "-scenario", "burst", "-target", srv.URL, "-keys", "60", "-c", "8", "-n", "1000", "-duration", "30s")
	if res.Ops != 60 || res.OK != 60 || len(res.Errors) != 0 {
		t.Fatalf("ops %d ok %d errors %v (first error %q); want 60, 60, none", res.Ops, res.OK, res.Errors, res.FirstError)
	}
	if res.Extra["created"] != 60 || res.Extra["returning"] != 0 {
		t.Fatalf("extra %v, want created=60 returning=0", res.Extra)
	}
	seen := signIns()
	if len(seen) != 60 {
		t.Fatalf("the server saw %d addresses, want 60", len(seen))
	}
	for a, n := range seen {
		if n != 1 {
			t.Errorf("%s signed in %d times, want once", a, n)
		}
	}
}

// -n below -keys stops the burst at -n; the same -seed again signs in the
// same addresses (returning), another seed new ones.
func TestBurstBoundsAndSeed(t *testing.T) {
	srv, signIns := fakeWalletServer(t)
	res := runJSON(t, "-scenario", "burst", "-target", srv.URL, "-keys", "40", "-n", "25", "-c", "4", "-seed", "s1")
	if res.Ops != 25 || res.Extra["created"] != 25 {
		t.Fatalf("-n 25: ops %d extra %v, want 25 ops, all created", res.Ops, res.Extra)
	}
	res = runJSON(t, "-scenario", "burst", "-target", srv.URL, "-keys", "25", "-c", "4", "-seed", "s1")
	if res.Ops != 25 || res.Extra["created"] != 0 || res.Extra["returning"] != 25 {
		t.Fatalf("same seed again: ops %d extra %v, want 25 returning", res.Ops, res.Extra)
	}
	res = runJSON(t, "-scenario", "burst", "-target", srv.URL, "-keys", "10", "-c", "4", "-seed", "s2")
	if res.Extra["created"] != 10 || len(signIns()) != 35 {
		t.Fatalf("another seed: extra %v, %d addresses seen; want 10 created, 35 addresses", res.Extra, len(signIns()))
	}
}

// Failed sign-ins count as errors by status and use up their key: the
// burst does not retry.
func TestBurstCountsErrors(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"error":"rate_limited"}`, http.StatusTooManyRequests)
	}))
	defer srv.Close()
	res := runJSON(t, "-scenario", "burst", "-target", srv.URL, "-keys", "30", "-c", "3")
	if res.Ops != 30 || res.OK != 0 || res.Errors["429"] != 30 || calls.Load() != 30 {
		t.Fatalf("ops %d ok %d errors %v, server saw %d; want 30 × 429, one challenge each", res.Ops, res.OK, res.Errors, calls.Load())
	}
}

// A warm-up would sign the first keys in before the measured part: refused.
func TestBurstRefusesWarmup(t *testing.T) {
	err := run([]string{"-scenario", "burst", "-target", "http://127.0.0.1:1", "-keys", "1", "-warmup", "1s"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-warmup") {
		t.Fatalf("err = %v, want a refusal of -warmup", err)
	}
}
