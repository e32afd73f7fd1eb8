package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// MaxURLLength bounds an endpoint URL.
const MaxURLLength = 2048

// blocked are the ranges a webhook must not reach unless private targets
// are allowed (WALLETAUTH_WEBHOOK_ALLOW_PRIVATE): besides what netip
// classifies (loopback, private, link-local, multicast, unspecified), the
// ranges of carrier-grade NAT, "this network", benchmarking, reserved and
// broadcast, and the IPv6 NAT64 and discard prefixes that lead back to IPv4.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2002::/16"),
}

// publicAddr reports whether a is an address a webhook may be sent to
// when private targets are not allowed.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkURL validates an endpoint URL at registration: absolute http(s),
// a host, no user info or fragment, and — unless allowPrivate — no IP
// literal of a private range and no localhost name. Names are not resolved
// here (what they resolve to may change): the dialer checks every address
// it connects to (guardedControl).
func checkURL(raw string, allowPrivate bool) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > MaxURLLength {
		return "", ErrInvalidURL.WithMessage("url must be an http:// or https:// URL of at most %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", ErrInvalidURL.WithMessage("url must be an absolute http:// or https:// URL")
	}
	if u.User != nil || u.Fragment != "" {
		return "", ErrInvalidURL.WithMessage("url must not carry user info or a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", ErrInvalidURL.WithMessage("url has no host")
	}
	if !allowPrivate {
		h := strings.TrimSuffix(strings.ToLower(host), ".")
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			return "", ErrInvalidURL.WithMessage("url must not point at a loopback, private or link-local address")
		}
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && !publicAddr(a) {
			return "", ErrInvalidURL.WithMessage("url must not point at a loopback, private or link-local address")
		}
	}
	return u.String(), nil
}

// errPrivateTarget is why a delivery was refused: the name resolved to an
// address that is not public.
var errPrivateTarget = errors.New("webhooks: the URL resolves to a loopback, private or link-local address (WALLETAUTH_WEBHOOK_ALLOW_PRIVATE is off)")

// guardedControl is the net.Dialer Control of deliveries: it runs on every
// address the dialer connects to, after DNS resolution, so a name that
// resolves (or is re-pointed) to a private address is refused (SSRF, DNS
// rebinding).
func guardedControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhooks: dial %s %q: %w", network, address, err)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", errPrivateTarget, ap.Addr())
	}
	return nil
}

// compile-time check that guardedControl fits net.Dialer.Control.
var _ = net.Dialer{Control: guardedControl}
