package wallet

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// This file validates the RFC 3986 pieces EIP-4361 uses: URI, authority,
// scheme and pchar. It is written against the RFC's ABNF rather than on
// net/url, which accepts much that the RFC does not (and so would let a
// message through that other EIP-4361 implementations refuse).

// authority is an RFC 3986 authority split into its parts.
type authority struct {
	userinfo    string
	hasUserinfo bool
	host        string // reg-name, IPv4 address or "[IP-literal]"
	port        string // digits, "" when absent
}

// parseAuthority parses authority = [ userinfo "@" ] host [ ":" port ].
// The port, when present, must be 1 to 5 digits no greater than 65535
// (stricter than the RFC's *DIGIT, which allows "host:").
func parseAuthority(s string) (authority, error) {
	var a authority
	if at := strings.IndexByte(s, '@'); at >= 0 {
		a.userinfo, a.hasUserinfo, s = s[:at], true, s[at+1:]
		if !allPctEncoded(a.userinfo, isUserinfoChar) {
			return authority{}, errors.New("bad userinfo")
		}
	}
	hostEnd := len(s)
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return authority{}, errors.New("unterminated IP literal")
		}
		if !isIPLiteral(s[1:end]) {
			return authority{}, errors.New("bad IP literal")
		}
		hostEnd = end + 1
		if hostEnd < len(s) && s[hostEnd] != ':' {
			return authority{}, errors.New("junk after IP literal")
		}
	} else if c := strings.IndexByte(s, ':'); c >= 0 {
		hostEnd = c
	}
	a.host = s[:hostEnd]
	if !strings.HasPrefix(a.host, "[") && !allPctEncoded(a.host, isRegNameChar) {
		return authority{}, errors.New("bad host")
	}
	if hostEnd < len(s) {
		a.port = s[hostEnd+1:]
		if !isPort(a.port) {
			return authority{}, errors.New("bad port")
		}
	}
	return a, nil
}

func isPort(s string) bool {
	if len(s) == 0 || len(s) > 5 || !allBytes(s, isDigit) {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n <= 65535
}

// isIPLiteral checks the inside of "[...]": IPv6address / IPvFuture.
func isIPLiteral(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
		dot := strings.IndexByte(s, '.')
		if dot < 2 || dot == len(s)-1 || !allBytes(s[1:dot], isHexDigit) {
			return false
		}
		return allBytes(s[dot+1:], func(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' })
	}
	if strings.IndexByte(s, '%') >= 0 { // zones are not part of RFC 3986
		return false
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6()
}

// uriParts is an RFC 3986 URI split at its top-level delimiters.
type uriParts struct {
	scheme       string
	hasAuthority bool
	authority    authority
}

// parseURI checks s against RFC 3986's
// URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
// and returns its scheme and authority.
func parseURI(s string) (uriParts, error) {
	var u uriParts
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return uriParts{}, errors.New("no scheme")
	}
	u.scheme, s = s[:colon], s[colon+1:]
	if !isScheme(u.scheme) {
		return uriParts{}, errors.New("bad scheme")
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		if !allPctEncoded(s[i+1:], isQueryChar) {
			return uriParts{}, errors.New("bad fragment")
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		if !allPctEncoded(s[i+1:], isQueryChar) {
			return uriParts{}, errors.New("bad query")
		}
		s = s[:i]
	}
	if rest, ok := strings.CutPrefix(s, "//"); ok {
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		a, err := parseAuthority(rest[:end])
		if err != nil {
			return uriParts{}, err
		}
		u.hasAuthority, u.authority, s = true, a, rest[end:]
	}
	// Without an authority the path cannot start with "//" (handled above);
	// with one it is empty or starts with "/" (guaranteed by the split).
	if !allPctEncoded(s, func(c byte) bool { return isPChar(c) || c == '/' }) {
		return uriParts{}, errors.New("bad path")
	}
	return u, nil
}

// isScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	return allBytes(s[1:], func(c byte) bool { return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.' })
}

// isRequestID: *pchar.
func isRequestID(s string) bool { return allPctEncoded(s, isPChar) }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

// The following take part in allPctEncoded, which handles "%" HEXDIG HEXDIG itself.
func isRegNameChar(c byte) bool  { return isUnreserved(c) || isSubDelim(c) }
func isUserinfoChar(c byte) bool { return isRegNameChar(c) || c == ':' }
func isPChar(c byte) bool        { return isRegNameChar(c) || c == ':' || c == '@' }
func isQueryChar(c byte) bool    { return isPChar(c) || c == '/' || c == '?' }

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// allPctEncoded reports whether s is made of bytes accepted by ok and
// pct-encoded triplets ("%" HEXDIG HEXDIG).
func allPctEncoded(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
				return false
			}
			i += 2
			continue
		}
		if !ok(c) {
			return false
		}
	}
	return true
}
