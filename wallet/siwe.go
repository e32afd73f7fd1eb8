package wallet

import (
	"math"
	"net/url"
	"strings"

	siwe "github.com/spruceid/siwe-go"
)

// siweText builds m's EIP-4361 text with siwe-go, and reports false when
// siwe-go (v0.2.1) cannot write one of m's fields exactly; String then uses
// this package's own writer. Those fields, each shown by TestSiweGoBuilderLimits:
//
//   - a Scheme: siwe-go's Message has no scheme (EIP-4361 added it later);
//   - a Version other than "1" (unvalidated input): siwe-go always writes "1";
//   - a present but empty Request ID, or a present but empty Resources
//     list: siwe-go leaves the line out;
//   - a Statement of only spaces: siwe-go treats it as absent;
//   - a URI or resource that net/url does not write back byte for byte
//     (an upper-case scheme, an empty "#" fragment, escapes it rewrites):
//     siwe-go writes url.URL.String();
//   - a chain ID above math.MaxInt: siwe-go holds it in an int;
//   - a domain or time that siwe-go's validation refuses (InitMessage errs).
//
// The times are handed to siwe-go as the exact text String writes (siwe-go
// writes a string timestamp as given).
func (m *Message) siweText() (string, bool) {
	if m.Scheme != "" || m.Version != "1" ||
		m.RequestID != nil && *m.RequestID == "" ||
		m.Resources != nil && len(m.Resources) == 0 ||
		m.Statement != nil && strings.TrimSpace(*m.Statement) == "" ||
		m.ChainID > math.MaxInt {
		return "", false
	}
	if !urlExact(m.URI) {
		return "", false
	}
	opts := map[string]any{
		"chainId":  int(m.ChainID),
		"issuedAt": m.issuedAtText.format(m.IssuedAt),
	}
	if m.Statement != nil {
		opts["statement"] = *m.Statement
	}
	if m.ExpirationTime != nil {
		opts["expirationTime"] = m.expirationTimeText.format(*m.ExpirationTime)
	}
	if m.NotBefore != nil {
		opts["notBefore"] = m.notBeforeText.format(*m.NotBefore)
	}
	if m.RequestID != nil {
		opts["requestId"] = *m.RequestID
	}
	if m.Resources != nil {
		resources := make([]url.URL, len(m.Resources))
		for i, r := range m.Resources {
			u, err := url.Parse(r)
			if err != nil || u.String() != r {
				return "", false
			}
			resources[i] = *u
		}
		opts["resources"] = resources
	}
	sm, err := siwe.InitMessage(m.Domain, m.AddressHex(), m.URI, m.Nonce, opts)
	if err != nil {
		return "", false
	}
	return sm.String(), true
}

// urlExact reports whether net/url (which siwe-go writes URIs with) parses s
// and writes it back unchanged.
func urlExact(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.String() == s
}
