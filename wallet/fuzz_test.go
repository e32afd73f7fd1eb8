package wallet_test

import (
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/walletauth/walletauth/wallet"
)

// Seed corpora are in testdata/fuzz/<FuzzName>/; f.Add adds a few more.

func FuzzParseMessage(f *testing.F) {
	f.Add(fullMessage)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := wallet.ParseMessage(s)
		if err != nil {
			if !errors.Is(err, wallet.ErrInvalidMessage) {
				t.Fatalf("error not wrapping ErrInvalidMessage: %v", err)
			}
			return
		}
		out := m.String()
		if out != s {
			t.Fatalf("String() differs from the parsed text:\n%q\n%q", s, out)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed message does not validate: %v", err)
		}
		back, err := wallet.ParseMessage(out)
		if err != nil {
			t.Fatalf("String() does not parse again: %v\n%q", err, out)
		}
		if d := diffMessages(back, m); d != "" {
			t.Fatalf("round trip changed the message: %s", d)
		}
		if m.Check(wallet.CheckOptions{AllowedDomains: []string{m.Domain}, ChainIDs: []uint64{m.ChainID}, Skew: 1 << 62}) == nil {
			// v1.1: what Check lets through names a web origin and a web URI.
			if sc := strings.ToLower(m.Scheme); sc != "" && sc != "https" && sc != "http" {
				t.Fatalf("Check accepted the scheme %q", m.Scheme)
			}
			u, err := url.Parse(m.URI)
			if err != nil || (!strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) || u.User != nil {
				t.Fatalf("Check accepted the URI %q (%v)", m.URI, err)
			}
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	f.Add("0x1234")
	f.Add("0x")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := wallet.ParseSignature(s)
		if err != nil {
			if !errors.Is(err, wallet.ErrInvalidSignature) {
				t.Fatalf("error not wrapping ErrInvalidSignature: %v", err)
			}
			return
		}
		if len(sig) == 0 || len(sig) > wallet.MaxSignatureLen {
			t.Fatalf("accepted %d bytes", len(sig))
		}
		again, err := wallet.ParseSignature("0x" + hex.EncodeToString(sig))
		if err != nil || string(again) != string(sig) {
			t.Fatalf("re-encoded signature: %x, %v; want %x", again, err, sig)
		}
		_, _ = wallet.Recover(common.Hash{}, sig)
	})
}

func FuzzRecover(f *testing.F) {
	f.Add([]byte("hello"), []byte{0x12, 0x34})
	f.Add([]byte("hello"), make([]byte, 65))
	f.Add([]byte("hello"), make([]byte, 64))
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		addr, err := wallet.Recover(wallet.HashEIP191(msg), sig)
		switch {
		case err == nil:
			if len(sig) != 64 && len(sig) != 65 {
				t.Fatalf("recovered %s from %d bytes", addr.Hex(), len(sig))
			}
			if err := wallet.VerifyEOA(msg, sig, addr); err != nil {
				t.Fatalf("VerifyEOA disagrees with Recover: %v", err)
			}
		case errors.Is(err, wallet.ErrInvalidSignature):
			if !errors.Is(err, wallet.ErrNotKeySignature) {
				t.Fatalf("invalid without ErrNotKeySignature: %v", err)
			}
		case errors.Is(err, wallet.ErrSignatureMismatch):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	})
}
