package main

// Scenarios against supabase/auth (GoTrue), the reference walletauth's
// sign-in and token-check rates are compared with (scripts/bench-gotrue.sh):
//
//	walletauth-load -scenario gotrue-web3 -target http://127.0.0.1:18190 -keys 10000 -seed s
//	walletauth-load -scenario gotrue-user -target http://127.0.0.1:18190
//
// GoTrue's Ethereum sign-in is one request, POST /token?grant_type=web3
// with {chain, message, signature}: the client writes the EIP-4361 message
// itself (GoTrue issues no nonce and keeps none), and the server parses
// it, recovers the EIP-191 signer, checks the URI against its SITE_URL
// (http only for localhost), that Issued At is within
// GOTRUE_EXTERNAL_WEB3_ETHEREUM_MAXIMUM_VALIDITY_DURATION (10m) of now,
// Not Before and Expiration Time when given, and a positive Chain ID; the
// Domain is checked against the URI's host only when that host is not
// localhost. walletauth's sign-in is two requests (challenge, login) with a
// server-issued single-use nonce.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// gotrueOrigin is the domain and URI GoTrue accepts in a message sent to
// base: its SITE_URL must be http://localhost:<port> (the script sets it
// so). GoTrue refuses an IP literal as the domain and a plain-http URI
// whose host is not localhost.
func gotrueOrigin(base string) (domain, uri string, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", "", err
	}
	domain = "localhost"
	if p := u.Port(); p != "" {
		domain += ":" + p
	}
	return domain, u.Scheme + "://" + domain, nil
}

// siweMessage is an EIP-4361 message as GoTrue's parser reads it: header,
// address, a statement, then URI, Version, Chain ID, Nonce, Issued At and
// Expiration Time, one a line, with no trailing newline.
func siweMessage(domain, uri, address, nonce string, issuedAt time.Time) string {
	b := make([]byte, 0, 320)
	b = append(b, domain...)
	b = append(b, " wants you to sign in with your Ethereum account:\n"...)
	b = append(b, address...)
	b = append(b, "\n\nSign in with your wallet.\n\nURI: "...)
	b = append(b, uri...)
	b = append(b, "\nVersion: 1\nChain ID: 1\nNonce: "...)
	b = append(b, nonce...)
	b = append(b, "\nIssued At: "...)
	b = issuedAt.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, "\nExpiration Time: "...)
	b = issuedAt.Add(5*time.Minute).UTC().AppendFormat(b, time.RFC3339)
	return string(b)
}

// gotrueWeb3Body is the web3 grant's request (a struct: encoding a map sorts it).
type gotrueWeb3Body struct {
	Chain     string `json:"chain"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
}

// gotrueTokenResp is the part of GoTrue's AccessTokenResponse the tool
// reads. GoTrue does not say whether the sign-in created the user; the user
// it returns tells: a new one's created_at and last_sign_in_at are stamped
// in the same transaction, a returning one's created_at is older (by at
// least the gap between two runs; a key signed in again within one run is
// counted as returning by the scenario itself).
type gotrueTokenResp struct {
	AccessToken string
	Created     bool
}

// createdWithin is how close created_at and last_sign_in_at must be for the
// sign-in to count as the one that created the user.
const createdWithin = time.Second

func (g *gotrueTokenResp) decodeFast(v *fastjson.Value) (err error) {
	if g.AccessToken, err = str(v, "access_token"); err != nil {
		return err
	}
	u := v.Get("user")
	if u == nil {
		return errors.New(`no "user" in the answer`)
	}
	created, err := timeField(u, "created_at")
	if err != nil {
		return err
	}
	signedIn, err := timeField(u, "last_sign_in_at")
	if err != nil {
		return err
	}
	g.Created = signedIn.Sub(created) < createdWithin
	return nil
}

func timeField(v *fastjson.Value, key string) (time.Time, error) {
	s, err := str(v, key)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", key, err)
	}
	return t, nil
}

const gotrueWeb3Path = "/token?grant_type=web3"

// gotrueClient signs in to GoTrue with wallet keys.
type gotrueClient struct {
	cl          *client
	domain, uri string
	nonceTag    string // per run, so that no two messages of a run are the same
	now         func() time.Time
}

func newGotrueClient(cl *client) (*gotrueClient, error) {
	domain, uri, err := gotrueOrigin(cl.base)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	return &gotrueClient{cl: cl, domain: domain, uri: uri, nonceTag: hex.EncodeToString(rnd[:]), now: time.Now}, nil
}

// signIn is one GoTrue wallet sign-in: write the message, sign, POST.
func (g *gotrueClient) signIn(ctx context.Context, k benchKey, i int64) (int, *gotrueTokenResp, error) {
	nonce := g.nonceTag + strconv.FormatInt(i, 36)
	for len(nonce) < 17 { // EIP-4361: at least 8 alphanumerics
		nonce += "0"
	}
	msg := siweMessage(g.domain, g.uri, k.addr, nonce, g.now())
	sig, err := signEIP191(k.priv, msg)
	if err != nil {
		return 0, nil, err
	}
	var tr gotrueTokenResp
	s, err := g.cl.call(ctx, http.MethodPost, gotrueWeb3Path, "",
		gotrueWeb3Body{Chain: "ethereum", Message: msg, Signature: sig}, &tr)
	if err != nil || !okStatus(s) {
		return s, nil, err
	}
	return s, &tr, nil
}

// ---------------------------------------------------------------- gotrue-web3

type gotrueWeb3Scenario struct {
	g         *gotrueClient
	keys      []benchKey
	seen      []atomic.Bool // key j signed in already in this run
	created   atomic.Int64
	returning atomic.Int64
}

func newGotrueWeb3Scenario(cl *client, o options) (*gotrueWeb3Scenario, error) {
	g, err := newGotrueClient(cl)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	keys, err := generateKeys(o.keys, o.seed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "generated %d keys in %s\n", len(keys), time.Since(t0).Round(time.Millisecond))
	return &gotrueWeb3Scenario{g: g, keys: keys, seen: make([]atomic.Bool, len(keys))}, nil
}

func (w *gotrueWeb3Scenario) do(ctx context.Context, _ int, i int64) (int, bool) {
	j := i % int64(len(w.keys))
	s, tr, err := w.g.signIn(ctx, w.keys[j], i)
	if err != nil || tr == nil {
		return s, false
	}
	if again := w.seen[j].Swap(true); tr.Created && !again {
		w.created.Add(1)
	} else {
		w.returning.Add(1)
	}
	return s, true
}

func (w *gotrueWeb3Scenario) extra() map[string]int64 {
	return map[string]int64{"created": w.created.Load(), "returning": w.returning.Load(), "http_requests_per_op": 1}
}

// ---------------------------------------------------------------- gotrue-user

// gotrueUserScenario is GoTrue's token check, GET /user with the access
// token of one wallet sign-in made at setup (the counterpart of
// walletauth's GET /v1/users/me).
type gotrueUserScenario struct {
	cl    *client
	token string
}

func newGotrueUserScenario(cl *client) (*gotrueUserScenario, error) {
	g, err := newGotrueClient(cl)
	if err != nil {
		return nil, err
	}
	keys, err := generateKeys(1, "")
	if err != nil {
		return nil, err
	}
	s, tr, err := g.signIn(context.Background(), keys[0], 0)
	if err != nil {
		return nil, err
	}
	if tr == nil {
		return nil, fmt.Errorf("web3 sign-in answered %d", s)
	}
	return &gotrueUserScenario{cl: cl, token: tr.AccessToken}, nil
}

func (u *gotrueUserScenario) do(ctx context.Context, _ int, _ int64) (int, bool) {
	s, err := u.cl.call(ctx, http.MethodGet, "/user", u.token, nil, nil)
	return s, err == nil && okStatus(s)
}
