package wallet_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/walletauth/walletauth/wallet"
)

// fullMessage has every optional field.
const fullMessage = `https://example.com:8443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the "Terms" — 100% (ünïcode, quotes and all)

URI: https://example.com:8443/login?next=%2Fhome#top
Version: 1
Chain ID: 137
Nonce: Ab3dEf7h9JkLmN0p
Issued At: 2024-05-01T10:00:00.123456789+02:00
Expiration Time: 2024-05-01T10:05:00Z
Not Before: 2024-05-01T09:59:00.5Z
Request ID: req-1:a@b
Resources:
- ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi
- https://example.com/my-web2-claim.json`

func TestParseMessageFullRoundTrip(t *testing.T) {
	m, err := wallet.ParseMessage(fullMessage)
	if err != nil {
		t.Fatal(err)
	}
	if m.Scheme != "https" || m.Domain != "example.com:8443" || m.ChainID != 137 ||
		m.RequestID == nil || *m.RequestID != "req-1:a@b" || len(m.Resources) != 2 ||
		m.NotBefore == nil || !m.NotBefore.Equal(time.Date(2024, 5, 1, 9, 59, 0, 5e8, time.UTC)) ||
		m.ExpirationTime == nil || !m.ExpirationTime.Equal(time.Date(2024, 5, 1, 10, 5, 0, 0, time.UTC)) ||
		!m.IssuedAt.Equal(time.Date(2024, 5, 1, 8, 0, 0, 123456789, time.UTC)) {
		t.Fatalf("unexpected fields: %+v", m)
	}
	if got := m.String(); got != fullMessage {
		t.Fatalf("String() =\n%s\nwant\n%s", got, fullMessage)
	}
	// A changed time is written anew; an unchanged one keeps its text.
	later := m.IssuedAt.Add(time.Second).UTC()
	m.IssuedAt = later
	want := strings.Replace(fullMessage, "2024-05-01T10:00:00.123456789+02:00", "2024-05-01T08:00:01.123456789Z", 1)
	if got := m.String(); got != want {
		t.Fatalf("String() after changing IssuedAt =\n%s\nwant\n%s", got, want)
	}
}

// TestAddressHexFollowsTheAddress: the EIP-55 text kept from parsing is
// only used while the address is the parsed one.
func TestAddressHexFollowsTheAddress(t *testing.T) {
	m, err := wallet.ParseMessage(fullMessage)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.AddressHex(), "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"; got != want {
		t.Fatalf("AddressHex() = %s, want %s", got, want)
	}
	other := common.HexToAddress("0x52908400098527886e0f7030069857d2e4169ee7")
	m.Address = other
	if got, want := m.AddressHex(), "0x52908400098527886E0F7030069857D2E4169EE7"; got != want {
		t.Fatalf("AddressHex() after changing Address = %s, want %s", got, want)
	}
	if !strings.Contains(m.String(), "\n0x52908400098527886E0F7030069857D2E4169EE7\n") {
		t.Fatalf("String() does not name the new address:\n%s", m.String())
	}
	built := wallet.Message{Address: other}
	if got := built.AddressHex(); got != other.Hex() {
		t.Fatalf("AddressHex() of a built message = %s, want %s", got, other.Hex())
	}
}

// TestParseMessageRefuses changes one thing in fullMessage at a time.
func TestParseMessageRefuses(t *testing.T) {
	tests := []struct{ name, old, new string }{
		{"chain ID hex", "Chain ID: 137", "Chain ID: 0x89"},
		{"chain ID leading zero", "Chain ID: 137", "Chain ID: 0137"},
		{"chain ID zero", "Chain ID: 137", "Chain ID: 0"},
		{"chain ID empty", "Chain ID: 137", "Chain ID: "},
		{"chain ID signed", "Chain ID: 137", "Chain ID: +137"},
		{"chain ID overflow", "Chain ID: 137", "Chain ID: 18446744073709551616"},
		{"chain ID space", "Chain ID: 137", "Chain ID:  137"},
		{"version 2", "Version: 1", "Version: 2"},
		{"version 1.0", "Version: 1", "Version: 1.0"},
		{"nonce 7 chars", "Nonce: Ab3dEf7h9JkLmN0p", "Nonce: Ab3dEf7"},
		{"nonce with dash", "Nonce: Ab3dEf7h9JkLmN0p", "Nonce: Ab3dEf7h-JkLmN0p"},
		{"nonce non-ASCII", "Nonce: Ab3dEf7h9JkLmN0p", "Nonce: Ab3dEf7h9JkLmNé"},
		{"address all lower", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"},
		{"address all upper", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02AAA39B223FE8D0A0E5C4F27EAD9083C756CC2"},
		{"address bad checksum", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756CC2"},
		{"zero address", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0x0000000000000000000000000000000000000000"},
		{"timestamp without zone", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T10:05:00"},
		{"timestamp date only", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01"},
		{"timestamp February 31", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-02-31T10:05:00Z"},
		{"timestamp hour 24", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T24:05:00Z"},
		{"timestamp space", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01 10:05:00Z"},
		{"timestamp empty fraction", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T10:05:00.Z"},
		{"timestamp offset 24h", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T10:05:00+24:00"},
		{"timestamp offset no colon", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T10:05:00+0200"},
		{"bad scheme", "https://example.com:8443 wants", "1https://example.com:8443 wants"},
		{"empty scheme", "https://example.com:8443 wants", "://example.com:8443 wants"},
		{"domain bad port", "https://example.com:8443 wants", "https://example.com:99999 wants"},
		{"domain empty port", "https://example.com:8443 wants", "https://example.com: wants"},
		{"domain with path", "https://example.com:8443 wants", "https://example.com/x wants"},
		{"domain empty host", "https://example.com:8443 wants", "https://:8443 wants"},
		{"domain bad IPv6", "https://example.com:8443 wants", "https://[::cafe:nope] wants"},
		{"domain IPv6 zone", "https://example.com:8443 wants", "https://[fe80::1%25eth0] wants"},
		{"domain space", "https://example.com:8443 wants", "https://exa mple.com wants"},
		{"header wording", "wants you to sign in", "wants you to log in"},
		{"uri relative", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: /login"},
		{"uri space", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: https://example.com/log in"},
		{"uri bad percent", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: https://example.com/%zz"},
		{"uri two fragments", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: https://example.com/#a#b"},
		{"uri non-ASCII", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: https://exämple.com/"},
		{"resource bad", "- https://example.com/my-web2-claim.json", "- not a uri"},
		{"resource without dash", "- https://example.com/my-web2-claim.json", "https://example.com/my-web2-claim.json"},
		{"resource two spaces", "- https://example.com/my-web2-claim.json", "-  https://example.com/my-web2-claim.json"},
		{"request ID space", "Request ID: req-1:a@b", "Request ID: req 1"},
		{"request ID slash", "Request ID: req-1:a@b", "Request ID: req/1"},
		{"statement with CR", "I accept the", "I accept\rthe"},
		{"statement with tab", "I accept the", "I accept\tthe"},
		{"statement with line separator", "I accept the", "I accept\u2028the"},
		{"statement invalid UTF-8", "I accept the", "I accept \xff the"},
		{"statement two lines", "I accept the", "I accept\nthe"},
		{"empty statement line", "I accept the \"Terms\" — 100% (ünïcode, quotes and all)\n", "\n"},
		{"missing empty line after address", "Cc2\n\n", "Cc2\n"},
		{"trailing line break", "claim.json", "claim.json\n"},
		{"CRLF line breaks", "\n", "\r\n"},
		{"field lowercase", "Version: 1", "version: 1"},
		{"optional fields out of order", "Expiration Time: 2024-05-01T10:05:00Z\nNot Before: 2024-05-01T09:59:00.5Z", "Not Before: 2024-05-01T09:59:00.5Z\nExpiration Time: 2024-05-01T10:05:00Z"},
		{"duplicate field", "Version: 1", "Version: 1\nVersion: 1"},
		{"unknown field", "Request ID: req-1:a@b", "Request ID: req-1:a@b\nFoo: bar"},
		{"text after resources", "claim.json", "claim.json\nBye"},
		{"leading space", "https://example.com:8443 wants", " https://example.com:8443 wants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(fullMessage, tt.old) {
				t.Fatalf("fullMessage has no %q", tt.old)
			}
			s := strings.ReplaceAll(fullMessage, tt.old, tt.new)
			if m, err := wallet.ParseMessage(s); !errors.Is(err, wallet.ErrInvalidMessage) {
				t.Fatalf("ParseMessage accepted:\n%s\nas %+v (err %v)", s, m, err)
			}
		})
	}
	if _, err := wallet.ParseMessage(""); !errors.Is(err, wallet.ErrInvalidMessage) {
		t.Fatalf("ParseMessage(\"\") = %v", err)
	}
	long := fullMessage + strings.Repeat("\n- https://example.com/", wallet.MaxMessageLen/20)
	if _, err := wallet.ParseMessage(long); !errors.Is(err, wallet.ErrInvalidMessage) {
		t.Fatalf("ParseMessage(%d bytes) = %v", len(long), err)
	}
}

// TestParseMessageAccepts changes one thing in fullMessage at a time.
func TestParseMessageAccepts(t *testing.T) {
	tests := []struct{ name, old, new string }{
		{"no scheme", "https://example.com:8443 wants", "example.com:8443 wants"},
		{"other scheme", "https://example.com:8443 wants", "chrome-extension://abcdef wants"},
		{"IPv6 domain with port", "https://example.com:8443 wants", "[2001:db8::1]:8080 wants"},
		{"IPvFuture domain", "https://example.com:8443 wants", "[v1.fe80::a+en1] wants"},
		{"userinfo domain", "https://example.com:8443 wants", "user:pw@example.com wants"},
		{"no statement", "I accept the \"Terms\" — 100% (ünïcode, quotes and all)\n", ""},
		{"max chain ID", "Chain ID: 137", "Chain ID: 18446744073709551615"},
		{"long nonce", "Nonce: Ab3dEf7h9JkLmN0p", "Nonce: " + strings.Repeat("a1", 64)},
		{"lowercase t and z", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01t10:05:00z"},
		{"negative offset", "Expiration Time: 2024-05-01T10:05:00Z", "Expiration Time: 2024-05-01T10:05:00-23:59"},
		{"empty request ID", "Request ID: req-1:a@b", "Request ID: "},
		{"no request ID", "Request ID: req-1:a@b\n", ""},
		{"empty resources", "\n- ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi\n- https://example.com/my-web2-claim.json", ""},
		{"urn URI", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
		{"did URI", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},
		{"file URI", "URI: https://example.com:8443/login?next=%2Fhome#top", "URI: file:///etc/hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(fullMessage, tt.old) {
				t.Fatalf("fullMessage has no %q", tt.old)
			}
			s := strings.ReplaceAll(fullMessage, tt.old, tt.new)
			m, err := wallet.ParseMessage(s)
			if err != nil {
				t.Fatalf("ParseMessage(\n%s\n): %v", s, err)
			}
			if got := m.String(); got != s {
				t.Fatalf("String() =\n%s\nwant\n%s", got, s)
			}
		})
	}
}

// TestIssueMessage is the server's way to make a challenge: a literal,
// Validate, String; what comes back from the wallet parses to the same.
func TestIssueMessage(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 891e6, time.UTC)
	exp := now.Add(5 * time.Minute)
	m := &wallet.Message{
		Domain:         "auth.example.com",
		Address:        common.HexToAddress("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
		URI:            "https://auth.example.com",
		Version:        "1",
		ChainID:        1,
		Nonce:          "q3Xb9LmN2pR7sT4v",
		IssuedAt:       now,
		ExpirationTime: &exp,
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	text := m.String()
	const want = "auth.example.com wants you to sign in with your Ethereum account:\n" +
		"0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\n" +
		"URI: https://auth.example.com\nVersion: 1\nChain ID: 1\nNonce: q3Xb9LmN2pR7sT4v\n" +
		"Issued At: 2025-03-04T05:06:07.891Z\nExpiration Time: 2025-03-04T05:11:07.891Z"
	if text != want {
		t.Fatalf("String() =\n%s\nwant\n%s", text, want)
	}
	back, err := wallet.ParseMessage(text)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffMessages(back, m); d != "" {
		t.Fatal(d)
	}
}

func TestValidate(t *testing.T) {
	valid := func() *wallet.Message {
		st := "Sign in"
		return &wallet.Message{
			Domain: "example.com", Address: common.HexToAddress("0x01"), Statement: &st,
			URI: "https://example.com", Version: "1", ChainID: 1, Nonce: "abcdefgh",
			IssuedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(*wallet.Message)
	}{
		{"empty domain", func(m *wallet.Message) { m.Domain = "" }},
		{"domain with scheme", func(m *wallet.Message) { m.Domain = "https://example.com" }},
		{"bad scheme", func(m *wallet.Message) { m.Scheme = "ht tp" }},
		{"zero address", func(m *wallet.Message) { m.Address = common.Address{} }},
		{"empty statement", func(m *wallet.Message) { m.Statement = new(string) }},
		{"statement line break", func(m *wallet.Message) { s := "a\nb"; m.Statement = &s }},
		{"empty URI", func(m *wallet.Message) { m.URI = "" }},
		{"empty version", func(m *wallet.Message) { m.Version = "" }},
		{"zero chain", func(m *wallet.Message) { m.ChainID = 0 }},
		{"empty nonce", func(m *wallet.Message) { m.Nonce = "" }},
		{"zero issued at", func(m *wallet.Message) { m.IssuedAt = time.Time{} }},
		{"issued at year 10000", func(m *wallet.Message) { m.IssuedAt = year10000 }},
		{"expiration year 10000", func(m *wallet.Message) { m.ExpirationTime = &year10000 }},
		{"not before with second offset", func(m *wallet.Message) {
			t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3601))
			m.NotBefore = &t
		}},
		{"bad request ID", func(m *wallet.Message) { s := "a b"; m.RequestID = &s }},
		{"bad resource", func(m *wallet.Message) { m.Resources = []string{"https://ok", "nope"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.change(m)
			if err := m.Validate(); !errors.Is(err, wallet.ErrInvalidMessage) {
				t.Fatalf("Validate = %v, want ErrInvalidMessage", err)
			}
		})
	}
}
