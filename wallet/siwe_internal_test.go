package wallet

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	siwe "github.com/spruceid/siwe-go"
)

// challengeShaped is a message as the server issues one: its configured
// domain, URI and statement, a nonce, Issued At now (whole seconds, UTC) and
// an expiry.
func challengeShaped(r *rand.Rand) *Message {
	domains := []struct{ domain, uri string }{
		{"app.example.com", "https://app.example.com/login"},
		{"localhost:8080", "http://localhost:8080/"},
		{"example.com", "https://example.com"},
		{"[::1]:3000", "http://[::1]:3000/sign-in?next=%2Fhome"},
		{"127.0.0.1", "http://127.0.0.1/"},
		{"sub.example.co.uk:443", "https://sub.example.co.uk/a/b#top"},
	}
	statements := []string{"", "Sign in to the example app.", "I accept the Terms — ünïcode, \"quotes\" and 100%."}
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	nonce := make([]byte, 16+r.IntN(17))
	for i := range nonce {
		nonce[i] = alnum[r.IntN(len(alnum))]
	}
	var addr common.Address
	for i := range addr {
		addr[i] = byte(r.Uint32())
	}
	addr[0] |= 1 // never the zero address
	d := domains[r.IntN(len(domains))]
	issued := time.Unix(1_700_000_000+r.Int64N(400_000_000), 0).UTC()
	exp := issued.Add(time.Duration(1+r.IntN(3600)) * time.Second)
	m := &Message{
		Domain: d.domain, Address: addr, URI: d.uri, Version: "1",
		ChainID: []uint64{1, 10, 137, 8453, 42161, 11155111, uint64(1 + r.Int64N(math.MaxInt64))}[r.IntN(7)],
		Nonce:   string(nonce), IssuedAt: issued, ExpirationTime: &exp,
	}
	if st := statements[r.IntN(len(statements))]; st != "" {
		m.Statement = &st
	}
	return m
}

// TestChallengeBuiltWithSiweGo: every server-issued challenge is written by
// siwe-go, the text is the one this package's own writer gives, and
// ParseMessage reads it back into the same fields.
func TestChallengeBuiltWithSiweGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 4361))
	for i := range 500 {
		m := challengeShaped(r)
		if err := m.Validate(); err != nil {
			t.Fatalf("challenge %d does not validate: %v", i, err)
		}
		text, ok := m.siweText()
		if !ok {
			t.Fatalf("challenge %d is not built by siwe-go:\n%s", i, m.text())
		}
		if own := m.text(); text != own {
			t.Fatalf("challenge %d: siwe-go wrote\n%q\nthe EIP-4361 text is\n%q", i, text, own)
		}
		if got := m.String(); got != text {
			t.Fatalf("challenge %d: String() is not siwe-go's text", i)
		}
		back, err := ParseMessage(text)
		if err != nil {
			t.Fatalf("challenge %d does not parse: %v\n%s", i, err, text)
		}
		if back.String() != text || back.Domain != m.Domain || back.Address != m.Address || back.URI != m.URI ||
			back.ChainID != m.ChainID || back.Nonce != m.Nonce || !back.IssuedAt.Equal(m.IssuedAt) ||
			!back.ExpirationTime.Equal(*m.ExpirationTime) || (back.Statement == nil) != (m.Statement == nil) {
			t.Fatalf("challenge %d: parsed back as %+v, issued %+v", i, back, m)
		}
	}
}

// TestSiweGoBuilderLimits shows, for each field siwe-go v0.2.1 cannot write
// exactly, what it writes instead, and that String keeps this package's
// writer for it (whose text parses back into the same message).
func TestSiweGoBuilderLimits(t *testing.T) {
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() *Message {
		st := "Sign in."
		return &Message{
			Domain: "example.com", Address: common.HexToAddress("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
			Statement: &st, URI: "https://example.com/", Version: "1", ChainID: 1,
			Nonce: "Ab3dEf7h9JkLmN0p", IssuedAt: issued,
		}
	}
	empty, blank := "", "   "
	tests := []struct {
		name   string
		change func(*Message)
		// siweGo is what siwe-go writes (or the error it gives) for the
		// same fields, fed to it directly.
		siweGo func(*Message) (string, error)
		want   string // a line of the correct text that siwe-go's lacks
	}{
		{"scheme", func(m *Message) { m.Scheme = "https" }, func(m *Message) (string, error) {
			return siweBuild(m, "https://"+m.Domain, m.URI, nil)
		}, "https://example.com wants you to sign in"},
		{"empty Request ID", func(m *Message) { m.RequestID = &empty }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, map[string]any{"requestId": ""})
		}, "\nRequest ID: "},
		{"empty Resources", func(m *Message) { m.Resources = []string{} }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, map[string]any{"resources": nil})
		}, "\nResources:"},
		{"blank statement", func(m *Message) { m.Statement = &blank }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, map[string]any{"statement": blank})
		}, "\n" + blank + "\n"},
		{"upper-case URI scheme", func(m *Message) { m.URI = "HTTPS://example.com/" }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, nil)
		}, "\nURI: HTTPS://example.com/\n"},
		{"empty URI fragment", func(m *Message) { m.URI = "https://example.com/#" }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, nil)
		}, "\nURI: https://example.com/#\n"},
		{"chain ID above MaxInt", func(m *Message) { m.ChainID = math.MaxUint64 }, func(m *Message) (string, error) {
			return siweBuild(m, m.Domain, m.URI, map[string]any{"chainId": int(int64(m.ChainID))}) // what an int holds
		}, "\nChain ID: 18446744073709551615\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.change(m)
			if err := m.Validate(); err != nil {
				t.Fatalf("the message is invalid: %v", err)
			}
			got := m.String()
			if !strings.Contains(got, tc.want) {
				t.Fatalf("String() lacks %q:\n%s", tc.want, got)
			}
			if _, ok := m.siweText(); ok {
				t.Error("siweText claims to write this message")
			}
			back, err := ParseMessage(got)
			if err != nil || back.String() != got {
				t.Fatalf("String() does not parse back: %v\n%s", err, got)
			}
			sg, err := tc.siweGo(m)
			if err == nil && strings.Contains(sg, tc.want) {
				t.Errorf("siwe-go now writes %q: let it build this field\n%s", tc.want, sg)
			}
			t.Logf("siwe-go: %q, %v", sg, err)
		})
	}
}

// siweBuild feeds m's fields to siwe-go directly, with extra options.
func siweBuild(m *Message, domain, uri string, extra map[string]any) (string, error) {
	opts := map[string]any{"chainId": int(min(m.ChainID, math.MaxInt)), "issuedAt": m.IssuedAt.Format(time.RFC3339)}
	if m.Statement != nil {
		opts["statement"] = *m.Statement
	}
	for k, v := range extra {
		if v == nil {
			continue
		}
		opts[k] = v
	}
	sm, err := siwe.InitMessage(domain, m.Address.Hex(), uri, m.Nonce, opts)
	if err != nil {
		return "", err
	}
	return sm.String(), nil
}

// BenchmarkChallengeText compares writing a challenge with siwe-go (what
// String does) and with this package's own writer.
func BenchmarkChallengeText(b *testing.B) {
	m := challengeShaped(rand.New(rand.NewPCG(1, 2)))
	b.Run("siwe-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := m.siweText(); !ok {
				b.Fatal("not built by siwe-go")
			}
		}
	})
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.text()
		}
	})
}
