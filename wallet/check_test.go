package wallet_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/walletauth/walletauth/wallet"
)

func TestCheck(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	base := func() *wallet.Message {
		return &wallet.Message{
			Domain: "example.com", Address: common.HexToAddress("0x01"),
			URI: "https://example.com/login", Version: "1", ChainID: 1, Nonce: "abcdefgh",
			IssuedAt: now.Add(-time.Minute), ExpirationTime: at(5 * time.Minute),
		}
	}
	opts := wallet.CheckOptions{Now: now, AllowedDomains: []string{"example.com", "localhost:3000", "[::1]"}, ChainIDs: []uint64{1, 137}}

	tests := []struct {
		name   string
		change func(*wallet.Message)
		opts   func(*wallet.CheckOptions)
		want   error
	}{
		{"valid", nil, nil, nil},
		{"domain case-insensitive", func(m *wallet.Message) { m.Domain = "EXAMPLE.com"; m.URI = "https://Example.COM/" }, nil, nil},
		{"domain with scheme", func(m *wallet.Message) { m.Scheme = "https" }, nil, nil},
		{"allowed entry with scheme", nil, func(o *wallet.CheckOptions) { o.AllowedDomains = []string{"https://example.com"} }, nil},
		{"domain with port", func(m *wallet.Message) { m.Domain = "localhost:3000"; m.URI = "http://localhost:3000/login" }, nil, nil},
		{"domain default port", func(m *wallet.Message) { m.Domain = "example.com:443"; m.URI = "https://example.com/" },
			func(o *wallet.CheckOptions) { o.AllowedDomains = []string{"example.com:443"} }, nil},
		{"URI on another port of a portless domain", func(m *wallet.Message) { m.URI = "https://example.com:8443/" }, nil, nil},
		{"IPv6 domain", func(m *wallet.Message) { m.Domain = "[::1]"; m.URI = "http://[0:0::1]:8080/" }, nil, nil},
		{"other chain allowed", func(m *wallet.Message) { m.ChainID = 137 }, nil, nil},
		{"no expiration", func(m *wallet.Message) { m.ExpirationTime = nil }, nil, nil},

		{"wrong domain", func(m *wallet.Message) { m.Domain = "evil.com"; m.URI = "https://evil.com" }, nil, wallet.ErrDomainMismatch},
		{"subdomain", func(m *wallet.Message) { m.Domain = "a.example.com"; m.URI = "https://a.example.com" }, nil, wallet.ErrDomainMismatch},
		{"domain missing port", func(m *wallet.Message) { m.Domain = "localhost"; m.URI = "http://localhost:3000" }, nil, wallet.ErrDomainMismatch},
		{"domain wrong port", func(m *wallet.Message) { m.Domain = "localhost:3001"; m.URI = "http://localhost:3001" }, nil, wallet.ErrDomainMismatch},
		{"domain with userinfo", func(m *wallet.Message) { m.Domain = "evil.com@example.com" }, nil, wallet.ErrDomainMismatch},
		{"no allowed domains", nil, func(o *wallet.CheckOptions) { o.AllowedDomains = nil }, wallet.ErrDomainMismatch},
		{"URI off domain", func(m *wallet.Message) { m.URI = "https://evil.com/login" }, nil, wallet.ErrDomainMismatch},
		{"URI on subdomain", func(m *wallet.Message) { m.URI = "https://www.example.com/login" }, nil, wallet.ErrDomainMismatch},
		{"URI userinfo trick", func(m *wallet.Message) { m.URI = "https://example.com@evil.com/" }, nil, wallet.ErrDomainMismatch},
		{"URI without authority", func(m *wallet.Message) { m.URI = "urn:example:com" }, nil, wallet.ErrDomainMismatch},
		{"URI wrong port", func(m *wallet.Message) { m.Domain = "localhost:3000"; m.URI = "http://localhost:3001/" }, nil, wallet.ErrDomainMismatch},
		{"URI default port not the domain's", func(m *wallet.Message) { m.Domain = "localhost:3000"; m.URI = "http://localhost/" }, nil, wallet.ErrDomainMismatch},
		// v1.1: the first line's scheme is https or http (or none); the URI is
		// an https:// or http:// URI without userinfo.
		{"scheme http", func(m *wallet.Message) { m.Scheme = "http" }, nil, nil},
		{"scheme upper case", func(m *wallet.Message) { m.Scheme = "HTTPS" }, nil, nil},
		{"scheme javascript", func(m *wallet.Message) { m.Scheme = "javascript" }, nil, wallet.ErrInvalidMessage},
		{"scheme wss", func(m *wallet.Message) { m.Scheme = "wss" }, nil, wallet.ErrInvalidMessage},
		{"scheme https+evil", func(m *wallet.Message) { m.Scheme = "https+evil" }, nil, wallet.ErrInvalidMessage},
		{"URI http", func(m *wallet.Message) { m.URI = "http://example.com/" }, nil, nil},
		{"URI scheme upper case", func(m *wallet.Message) { m.URI = "HTTPS://example.com/" }, nil, nil},
		{"URI javascript with the domain as host", func(m *wallet.Message) { m.URI = "javascript://example.com/%0Aalert(1)" }, nil, wallet.ErrDomainMismatch},
		{"URI javascript", func(m *wallet.Message) { m.URI = "javascript:alert(1)" }, nil, wallet.ErrDomainMismatch},
		{"URI data", func(m *wallet.Message) { m.URI = "data:text/html,hi" }, nil, wallet.ErrDomainMismatch},
		{"URI file on the domain", func(m *wallet.Message) { m.URI = "file://example.com/etc/passwd" }, nil, wallet.ErrDomainMismatch},
		{"URI wss on the domain", func(m *wallet.Message) { m.URI = "wss://example.com/" }, nil, wallet.ErrDomainMismatch},
		{"URI with userinfo on the domain", func(m *wallet.Message) { m.URI = "https://alice@example.com/login" }, nil, wallet.ErrDomainMismatch},
		{"URI with empty userinfo", func(m *wallet.Message) { m.URI = "https://@example.com/" }, nil, wallet.ErrDomainMismatch},
		{"URI with user and password", func(m *wallet.Message) { m.URI = "https://evil.com:x@example.com/" }, nil, wallet.ErrDomainMismatch},
		{"wrong chain", func(m *wallet.Message) { m.ChainID = 5 }, nil, wallet.ErrChainNotAllowed},
		{"no allowed chains", nil, func(o *wallet.CheckOptions) { o.ChainIDs = nil }, wallet.ErrChainNotAllowed},
		{"wrong chain and expired", func(m *wallet.Message) { m.ChainID = 5; m.ExpirationTime = at(-time.Hour) }, nil, wallet.ErrChainNotAllowed},

		{"expired", func(m *wallet.Message) { m.ExpirationTime = at(-time.Minute) }, nil, wallet.ErrMessageExpired},
		{"expired without not-before", func(m *wallet.Message) { m.NotBefore = nil; m.ExpirationTime = at(-time.Hour) }, nil, wallet.ErrMessageExpired},
		{"expiry just inside skew", func(m *wallet.Message) { m.ExpirationTime = at(-30*time.Second + time.Nanosecond) }, nil, nil},
		{"expiry at skew edge", func(m *wallet.Message) { m.ExpirationTime = at(-30 * time.Second) }, nil, wallet.ErrMessageExpired},
		{"not yet valid", func(m *wallet.Message) { m.NotBefore = at(time.Minute) }, nil, wallet.ErrMessageNotYetValid},
		{"not before at skew edge", func(m *wallet.Message) { m.NotBefore = at(30 * time.Second) }, nil, nil},
		{"not before past skew edge", func(m *wallet.Message) { m.NotBefore = at(30*time.Second + time.Nanosecond) }, nil, wallet.ErrMessageNotYetValid},
		{"not before passed", func(m *wallet.Message) { m.NotBefore = at(-time.Second) }, nil, nil},
		{"issued in the future", func(m *wallet.Message) { m.IssuedAt = *at(time.Hour) }, nil, wallet.ErrMessageNotYetValid},
		{"issued at skew edge", func(m *wallet.Message) { m.IssuedAt = *at(30 * time.Second) }, nil, nil},
		{"issued past skew edge", func(m *wallet.Message) { m.IssuedAt = *at(31 * time.Second) }, nil, wallet.ErrMessageNotYetValid},
		{"custom skew", func(m *wallet.Message) { m.IssuedAt = *at(50 * time.Second) },
			func(o *wallet.CheckOptions) { o.Skew = time.Minute }, nil},
		{"no skew", func(m *wallet.Message) { m.IssuedAt = *at(time.Nanosecond) },
			func(o *wallet.CheckOptions) { o.Skew = -1 }, wallet.ErrMessageNotYetValid},
		{"no skew, expiry now", func(m *wallet.Message) { m.ExpirationTime = at(0) },
			func(o *wallet.CheckOptions) { o.Skew = -1 }, wallet.ErrMessageExpired},
		{"time zones do not matter", func(m *wallet.Message) {
			m.IssuedAt = now.Add(20 * time.Second).In(time.FixedZone("", -5*3600))
		}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			if tt.change != nil {
				tt.change(m)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("test message is invalid: %v", err)
			}
			o := opts
			if tt.opts != nil {
				tt.opts(&o)
			}
			err := m.Check(o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckDefaultsNow(t *testing.T) {
	m := &wallet.Message{
		Domain: "example.com", Address: common.HexToAddress("0x01"), URI: "https://example.com",
		Version: "1", ChainID: 1, Nonce: "abcdefgh", IssuedAt: time.Now().Add(time.Hour),
	}
	err := m.Check(wallet.CheckOptions{AllowedDomains: []string{"example.com"}, ChainIDs: []uint64{1}})
	if !errors.Is(err, wallet.ErrMessageNotYetValid) {
		t.Fatalf("Check with zero Now = %v, want ErrMessageNotYetValid", err)
	}
}
