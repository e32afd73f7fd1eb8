package wallet_test

// Benchmarks of the signature side of a wallet sign-in, end to end as the
// server does it (parse the EIP-4361 text, check it, hash it, parse the hex
// signature, recover, compare), and the client's signing next to it, so
// BENCHMARKS.md can say how much of a sign-in is the curve and how much the
// rest. Self-contained: no helpers from other test files.

import (
	"crypto/ecdsa"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/wallet"
)

type signinFixture struct {
	key  *ecdsa.PrivateKey
	text string
	sig  string // 0x-hex, v = 27/28
	now  time.Time
	opts wallet.CheckOptions
}

func newSigninFixture(tb testing.TB) *signinFixture {
	tb.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC)
	exp := now.Add(5 * time.Minute)
	st := "Sign in with your wallet."
	m := &wallet.Message{
		Domain: "127.0.0.1:8080", Address: crypto.PubkeyToAddress(key.PublicKey), Statement: &st,
		URI: "http://127.0.0.1:8080", Version: "1", ChainID: 1, Nonce: "AbCdEfGhIjKlMnOpQrStUvWx",
		IssuedAt: now, ExpirationTime: &exp,
	}
	if err := m.Validate(); err != nil {
		tb.Fatal(err)
	}
	text := m.String()
	sig, err := crypto.Sign(wallet.HashEIP191([]byte(text)).Bytes(), key)
	if err != nil {
		tb.Fatal(err)
	}
	sig[64] += 27
	return &signinFixture{key: key, text: text, sig: "0x" + hex.EncodeToString(sig), now: now,
		opts: wallet.CheckOptions{Now: now.Add(time.Second), Skew: wallet.DefaultSkew, AllowedDomains: []string{"127.0.0.1:8080"}, ChainIDs: []uint64{1}}}
}

// BenchmarkSigninVerifyEndToEnd is everything auth.Wallet.verify does to a
// {message, signature} body except the store round trips: parse, check,
// parse the signature, EIP-191 hash, recover, compare.
func BenchmarkSigninVerifyEndToEnd(b *testing.B) {
	f := newSigninFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		m, err := wallet.ParseMessage(f.text)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Check(f.opts); err != nil {
			b.Fatal(err)
		}
		sig, err := wallet.ParseSignature(f.sig)
		if err != nil {
			b.Fatal(err)
		}
		got, err := wallet.Recover(wallet.HashEIP191([]byte(f.text)), sig)
		if err != nil || got != m.Address {
			b.Fatal(got, err)
		}
	}
}

// BenchmarkSigninVerifyNoCurve is the same without Recover: the part of
// verification that is not elliptic-curve work.
func BenchmarkSigninVerifyNoCurve(b *testing.B) {
	f := newSigninFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		m, err := wallet.ParseMessage(f.text)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Check(f.opts); err != nil {
			b.Fatal(err)
		}
		if _, err := wallet.ParseSignature(f.sig); err != nil {
			b.Fatal(err)
		}
		_ = wallet.HashEIP191([]byte(f.text))
	}
}

// BenchmarkSigninSignEIP191 is the client's side: hash and sign.
func BenchmarkSigninSignEIP191(b *testing.B) {
	f := newSigninFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := crypto.Sign(wallet.HashEIP191([]byte(f.text)).Bytes(), f.key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSigninSignRecoverParallel is ratio 1's denominator as a Go
// benchmark: sign + recover on every core (GOMAXPROCS goroutines).
func BenchmarkSigninSignRecoverParallel(b *testing.B) {
	f := newSigninFixture(b)
	want := crypto.PubkeyToAddress(f.key.PublicKey)
	msg := []byte(f.text)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sig, err := crypto.Sign(wallet.HashEIP191(msg).Bytes(), f.key)
			if err != nil {
				b.Fatal(err)
			}
			got, err := wallet.Recover(wallet.HashEIP191(msg), sig)
			if err != nil || got != want {
				b.Fatal(got, err)
			}
		}
	})
}
