package wallet

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultSkew is the clock skew Check allows when CheckOptions.Skew is zero.
const DefaultSkew = 30 * time.Second

// CheckOptions are the server's rules for an incoming message.
type CheckOptions struct {
	// Now is the current time. The zero value means time.Now().
	Now time.Time
	// Skew is the clock difference tolerated on each time bound. Zero means
	// DefaultSkew; a negative value means none.
	Skew time.Duration
	// AllowedDomains are the accepted domains, "host" or "host:port",
	// compared case-insensitively; a leading "scheme://" is ignored. An
	// empty list allows no domain.
	AllowedDomains []string
	// ChainIDs are the accepted chain IDs. An empty list allows no chain.
	ChainIDs []uint64
}

// Check applies the server's rules to a parsed message, in this order:
//
//   - the scheme written before the domain in the first line, when there is
//     one, must be "https" or "http" (in any case, as RFC 3986 schemes are
//     compared); else ErrInvalidMessage. EIP-4361 allows any RFC 3986 scheme
//     there, so ParseMessage reads "javascript://example.com wants you …",
//     but it names the origin of a request, which a login page only has with
//     one of these two;
//   - the domain (its host[:port]) must be in AllowedDomains and must carry
//     no userinfo, which would only serve to disguise the domain in a
//     wallet's prompt; else ErrDomainMismatch;
//   - the URI must be an "https://" or "http://" URI (so no "javascript:",
//     "data:" or "file:"), carry no userinfo ("https://app.example.com@evil.example/"
//     reads as app.example.com to a person), and have as host the domain's
//     host and, when the domain names a port, as port (explicit or the
//     scheme's default) that port; else ErrDomainMismatch;
//   - the chain ID must be in ChainIDs; else ErrChainNotAllowed;
//   - Issued At must not be after Now+Skew; else ErrMessageNotYetValid;
//   - Not Before, when present, must not be after Now+Skew; else
//     ErrMessageNotYetValid;
//   - Expiration Time, when present, must be after Now-Skew; else
//     ErrMessageExpired.
//
// Each time bound is checked on its own, whichever others are present.
// Check does not look at the nonce or the signature. The errors are wrapped
// with detail; a message that does not pass Validate yields ErrInvalidMessage.
func (m *Message) Check(opts CheckOptions) error {
	if m.Scheme != "" && !isWebScheme(m.Scheme) {
		return invalidMessage("scheme %q in the first line is not https or http", truncate(m.Scheme))
	}
	dom, err := parseAuthority(m.Domain)
	if err != nil || dom.host == "" {
		return invalidMessage("domain %q is not an RFC 3986 authority with a host", truncate(m.Domain))
	}
	if dom.hasUserinfo {
		return fmt.Errorf("%w: domain %q carries userinfo", ErrDomainMismatch, truncate(m.Domain))
	}
	if !domainAllowed(dom, opts.AllowedDomains) {
		return fmt.Errorf("%w: domain %q is not allowed", ErrDomainMismatch, truncate(m.Domain))
	}

	u, err := parseURI(m.URI)
	if err != nil {
		return invalidMessage("URI %q is not an RFC 3986 URI: %v", truncate(m.URI), err)
	}
	if !isWebScheme(u.scheme) {
		return fmt.Errorf("%w: URI %q is not an https:// or http:// URI", ErrDomainMismatch, truncate(m.URI))
	}
	if u.hasAuthority && u.authority.hasUserinfo {
		return fmt.Errorf("%w: URI %q carries userinfo", ErrDomainMismatch, truncate(m.URI))
	}
	if !u.hasAuthority || !hostEqual(u.authority.host, dom.host) {
		return fmt.Errorf("%w: URI %q is not on domain %q", ErrDomainMismatch, truncate(m.URI), truncate(m.Domain))
	}
	if dom.port != "" && effectivePort(u) != dom.port {
		return fmt.Errorf("%w: URI %q is not on port %s of domain %q", ErrDomainMismatch, truncate(m.URI), dom.port, truncate(m.Domain))
	}

	chainOK := false
	for _, id := range opts.ChainIDs {
		if id == m.ChainID {
			chainOK = true
			break
		}
	}
	if !chainOK {
		return fmt.Errorf("%w: chain ID %d", ErrChainNotAllowed, m.ChainID)
	}

	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	skew := opts.Skew
	switch {
	case skew == 0:
		skew = DefaultSkew
	case skew < 0:
		skew = 0
	}
	latest, earliest := now.Add(skew), now.Add(-skew)
	if m.IssuedAt.After(latest) {
		return fmt.Errorf("%w: issued at %s, after the server's time %s", ErrMessageNotYetValid, rfc3339(m.IssuedAt), rfc3339(now))
	}
	if m.NotBefore != nil && m.NotBefore.After(latest) {
		return fmt.Errorf("%w: not valid before %s, the server's time is %s", ErrMessageNotYetValid, rfc3339(*m.NotBefore), rfc3339(now))
	}
	if m.ExpirationTime != nil && !m.ExpirationTime.After(earliest) {
		return fmt.Errorf("%w: expired at %s, the server's time is %s", ErrMessageExpired, rfc3339(*m.ExpirationTime), rfc3339(now))
	}
	return nil
}

// rfc3339 writes t for a person: RFC 3339 in UTC, whole seconds (the
// contract's time format; a fraction of a second says nothing to a reader).
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// isWebScheme reports whether scheme is https or http, case-insensitively.
func isWebScheme(scheme string) bool {
	return strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http")
}

// domainAllowed reports whether dom's host[:port] is one of allowed.
func domainAllowed(dom authority, allowed []string) bool {
	for _, d := range allowed {
		if _, rest, ok := strings.Cut(d, "://"); ok {
			d = rest
		}
		a, err := parseAuthority(d)
		if err != nil || a.hasUserinfo || a.host == "" {
			continue
		}
		if hostEqual(a.host, dom.host) && a.port == dom.port {
			return true
		}
	}
	return false
}

// hostEqual compares hosts case-insensitively, and IP literals as addresses
// ("[::CAFE]" is "[0:0::cafe]").
func hostEqual(a, b string) bool {
	if strings.HasPrefix(a, "[") && strings.HasPrefix(b, "[") {
		ipa, erra := netip.ParseAddr(strings.Trim(a, "[]"))
		ipb, errb := netip.ParseAddr(strings.Trim(b, "[]"))
		if erra == nil && errb == nil {
			return ipa == ipb
		}
	}
	return strings.EqualFold(a, b)
}

// effectivePort is the URI's explicit port, else its scheme's default port
// for the schemes a login page is served on, else "".
func effectivePort(u uriParts) string {
	if u.authority.port != "" {
		return u.authority.port
	}
	switch strings.ToLower(u.scheme) {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}
