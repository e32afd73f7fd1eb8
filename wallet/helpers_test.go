package wallet_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/walletauth/walletauth/wallet"
)

// diffMessages describes how a and b differ, "" when they have the same
// content (times compared as instants).
func diffMessages(a, b *wallet.Message) string {
	var d []string
	cmp := func(name string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s: %v != %v", name, x, y))
		}
	}
	cmp("Scheme", a.Scheme, b.Scheme)
	cmp("Domain", a.Domain, b.Domain)
	cmp("Address", a.Address, b.Address)
	cmp("Statement", deref(a.Statement), deref(b.Statement))
	cmp("URI", a.URI, b.URI)
	cmp("Version", a.Version, b.Version)
	cmp("ChainID", a.ChainID, b.ChainID)
	cmp("Nonce", a.Nonce, b.Nonce)
	cmp("IssuedAt", instant(a.IssuedAt), instant(b.IssuedAt))
	cmp("ExpirationTime", timeOrNil(a.ExpirationTime), timeOrNil(b.ExpirationTime))
	cmp("NotBefore", timeOrNil(a.NotBefore), timeOrNil(b.NotBefore))
	cmp("RequestID", deref(a.RequestID), deref(b.RequestID))
	if (a.Resources == nil) != (b.Resources == nil) || !slices.Equal(a.Resources, b.Resources) {
		d = append(d, fmt.Sprintf("Resources: %q != %q", a.Resources, b.Resources))
	}
	return strings.Join(d, "; ")
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return "\"" + *p + "\""
}

func timeOrNil(p *time.Time) string {
	if p == nil {
		return "<nil>"
	}
	return instant(*p)
}

func instant(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
