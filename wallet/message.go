package wallet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// MaxMessageLen is the longest message text ParseMessage accepts, in bytes.
// EIP-4361 sets no limit; this one only bounds the work done on hostile input.
const MaxMessageLen = 64 << 10

const headerSuffix = " wants you to sign in with your Ethereum account:"

// Message is an EIP-4361 "Sign-In with Ethereum" message.
//
// To issue one, fill in a literal, call Validate, then String. Times are
// written with time.RFC3339Nano, so truncate them (for example to the
// second) for a tidy text. A Message from ParseMessage remembers how its
// timestamps were written, so String gives back the exact text it was
// parsed from as long as the times are not changed.
type Message struct {
	// Scheme is the optional RFC 3986 scheme written before the domain
	// ("https" in "https://example.com wants you to …"), "" when absent.
	Scheme string
	// Domain is the RFC 3986 authority asking for the signature, such as
	// "example.com" or "localhost:8080".
	Domain  string
	Address common.Address
	// Statement is nil when absent. It is never empty and has no line break.
	Statement *string
	// URI is an RFC 3986 URI, the subject of the signing.
	URI string
	// Version is always "1".
	Version string
	// ChainID is the EIP-155 chain ID, at least 1.
	ChainID  uint64
	Nonce    string
	IssuedAt time.Time
	// ExpirationTime and NotBefore are nil when absent.
	ExpirationTime *time.Time
	NotBefore      *time.Time
	// RequestID is nil when absent; it may be empty when present.
	RequestID *string
	// Resources are RFC 3986 URIs. nil means no "Resources:" section; an
	// empty, non-nil slice means a "Resources:" line with no entries.
	Resources []string

	// parsedHex is the EIP-55 text of parsedAddr as read by ParseMessage,
	// so AddressHex need not hash the address again (EIP-55 is a keccak).
	parsedAddr common.Address
	parsedHex  string

	// The timestamps as written in the parsed text, for an exact round trip.
	issuedAtText, expirationTimeText, notBeforeText writtenTime
}

// writtenTime is a timestamp as written in a message and its parsed value.
type writtenTime struct {
	text string
	t    time.Time
}

// format returns w's text when it still denotes t, else t in RFC 3339.
func (w writtenTime) format(t time.Time) string {
	if w.text != "" && w.t.Equal(t) {
		return w.text
	}
	return t.Format(time.RFC3339Nano)
}

// ParseMessage parses the text of an EIP-4361 message strictly: lines in
// the order of the EIP's ABNF, no trailing line break, the address in its
// EIP-55 checksummed form (an all-lowercase address is refused, as the EIP's
// test vectors require), Version "1", a Chain ID written as a canonical
// decimal of at least 1, a nonce of 8 or more ASCII letters and digits, RFC
// 3339 timestamps, RFC 3986 URIs, and a domain that is an RFC 3986 authority
// with a host, optionally preceded by "scheme://".
//
// For canonical input, ParseMessage(s).String() == s.
//
// It returns an error wrapping ErrInvalidMessage when s is not such a message.
func ParseMessage(s string) (*Message, error) {
	if len(s) > MaxMessageLen {
		return nil, invalidMessage("longer than %d bytes", MaxMessageLen)
	}
	p := parser{lines: strings.Split(s, "\n")}
	m := &Message{}

	header, ok := strings.CutSuffix(p.next(), headerSuffix)
	if !ok {
		return nil, invalidMessage("line 1 must end with %q", headerSuffix)
	}
	if scheme, domain, ok := strings.Cut(header, "://"); ok {
		if !isScheme(scheme) {
			return nil, invalidMessage("scheme %q is not an RFC 3986 scheme", truncate(scheme))
		}
		m.Scheme, m.Domain = scheme, domain
	} else {
		m.Domain = header
	}

	line2 := p.next()
	addr, err := parseChecksummedAddress(line2)
	if err != nil {
		return nil, invalidMessage("line 2: %v", err)
	}
	m.Address, m.parsedAddr, m.parsedHex = addr, addr, line2
	if p.next() != "" {
		return nil, invalidMessage("line 3 must be empty")
	}
	if st := p.next(); st != "" {
		m.Statement = &st
		if p.next() != "" {
			return nil, invalidMessage("the statement must be one line followed by an empty line")
		}
	}

	m.URI, err = p.field("URI: ")
	if err != nil {
		return nil, err
	}
	if m.Version, err = p.field("Version: "); err != nil {
		return nil, err
	}
	chainID, err := p.field("Chain ID: ")
	if err != nil {
		return nil, err
	}
	if m.ChainID, err = parseChainID(chainID); err != nil {
		return nil, err
	}
	if m.Nonce, err = p.field("Nonce: "); err != nil {
		return nil, err
	}
	issuedAt, err := p.field("Issued At: ")
	if err != nil {
		return nil, err
	}
	if m.IssuedAt, err = parseTimestamp(issuedAt); err != nil {
		return nil, invalidMessage("Issued At: %v", err)
	}
	m.issuedAtText = writtenTime{issuedAt, m.IssuedAt}

	if v, ok := p.optionalField("Expiration Time: "); ok {
		t, err := parseTimestamp(v)
		if err != nil {
			return nil, invalidMessage("Expiration Time: %v", err)
		}
		m.ExpirationTime, m.expirationTimeText = &t, writtenTime{v, t}
	}
	if v, ok := p.optionalField("Not Before: "); ok {
		t, err := parseTimestamp(v)
		if err != nil {
			return nil, invalidMessage("Not Before: %v", err)
		}
		m.NotBefore, m.notBeforeText = &t, writtenTime{v, t}
	}
	if v, ok := p.optionalField("Request ID: "); ok {
		m.RequestID = &v
	}
	if p.more() && p.peek() == "Resources:" {
		p.next()
		m.Resources = []string{}
		for p.more() {
			r, ok := strings.CutPrefix(p.next(), "- ")
			if !ok {
				return nil, invalidMessage("line %d: a resource must be written \"- URI\"", p.i)
			}
			m.Resources = append(m.Resources, r)
		}
	}
	if p.more() {
		return nil, invalidMessage("line %d: unexpected %q", p.i+1, truncate(p.peek()))
	}

	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// parser walks the lines of a message. Reading past the end yields an
// empty line, which every caller refuses where a line is required.
type parser struct {
	lines []string
	i     int
}

func (p *parser) more() bool { return p.i < len(p.lines) }

func (p *parser) peek() string {
	if !p.more() {
		return ""
	}
	return p.lines[p.i]
}

func (p *parser) next() string {
	l := p.peek()
	p.i++
	return l
}

// field reads a required "Name: value" line.
func (p *parser) field(prefix string) (string, error) {
	if !p.more() {
		return "", invalidMessage("missing %q line", strings.TrimSpace(prefix))
	}
	v, ok := strings.CutPrefix(p.next(), prefix)
	if !ok {
		return "", invalidMessage("line %d must start with %q", p.i, prefix)
	}
	return v, nil
}

// optionalField reads a "Name: value" line if the next line is one.
func (p *parser) optionalField(prefix string) (string, bool) {
	v, ok := strings.CutPrefix(p.peek(), prefix)
	if ok && p.more() {
		p.i++
		return v, true
	}
	return "", false
}

// parseChainID accepts a canonical decimal of at least 1 that fits in 64
// bits: no sign, no leading zero, no "0x".
func parseChainID(s string) (uint64, error) {
	if s == "" || s[0] == '0' || !allBytes(s, isDigit) {
		return 0, invalidMessage("Chain ID %q is not a positive decimal without leading zeros", truncate(s))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, invalidMessage("Chain ID %q: %v", truncate(s), errors.Unwrap(err))
	}
	return n, nil
}

// parseTimestamp parses an RFC 3339 date-time
// (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM), "T" and "Z" in either case).
// Leap seconds are refused.
func parseTimestamp(s string) (time.Time, error) {
	const short = len("2006-01-02T15:04:05Z")
	ok := len(s) >= short &&
		allBytes(s[0:4], isDigit) && s[4] == '-' && allBytes(s[5:7], isDigit) && s[7] == '-' &&
		allBytes(s[8:10], isDigit) && (s[10] == 'T' || s[10] == 't') &&
		allBytes(s[11:13], isDigit) && s[13] == ':' && allBytes(s[14:16], isDigit) && s[16] == ':' &&
		allBytes(s[17:19], isDigit)
	if ok {
		rest := s[19:]
		if strings.HasPrefix(rest, ".") {
			n := 1
			for n < len(rest) && isDigit(rest[n]) {
				n++
			}
			ok = n > 1
			rest = rest[n:]
		}
		switch {
		case rest == "Z" || rest == "z":
		case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && allBytes(rest[1:3], isDigit) &&
			rest[3] == ':' && allBytes(rest[4:6], isDigit):
			ok = ok && rest[1:3] <= "23" && rest[4:6] <= "59"
		default:
			ok = false
		}
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date-time", truncate(s))
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", s, err)
	}
	return t, nil
}

// Validate checks every field against EIP-4361, as ParseMessage does for a
// parsed message: Scheme empty or an RFC 3986 scheme; Domain an RFC 3986
// authority with a host; Address not the zero address; Statement absent or
// one non-empty line of printable text; URI and Resources RFC 3986 URIs;
// Version "1"; ChainID at least 1; Nonce 8 or more ASCII letters and digits;
// IssuedAt set; times with a year from 0 to 9999 and a whole-minute UTC
// offset; RequestID made of RFC 3986 pchar.
//
// It returns an error wrapping ErrInvalidMessage naming the first bad field.
func (m *Message) Validate() error {
	if m.Scheme != "" && !isScheme(m.Scheme) {
		return invalidMessage("scheme %q is not an RFC 3986 scheme", truncate(m.Scheme))
	}
	if a, err := parseAuthority(m.Domain); err != nil || a.host == "" {
		return invalidMessage("domain %q is not an RFC 3986 authority with a host", truncate(m.Domain))
	}
	if m.Address == (common.Address{}) {
		return invalidMessage("address is the zero address")
	}
	if m.Statement != nil {
		if err := checkStatement(*m.Statement); err != nil {
			return err
		}
	}
	if _, err := parseURI(m.URI); err != nil {
		return invalidMessage("URI %q is not an RFC 3986 URI: %v", truncate(m.URI), err)
	}
	if m.Version != "1" {
		return invalidMessage("version %q is not \"1\"", truncate(m.Version))
	}
	if m.ChainID == 0 {
		return invalidMessage("chain ID is 0")
	}
	if len(m.Nonce) < 8 || !allBytes(m.Nonce, func(c byte) bool { return isAlpha(c) || isDigit(c) }) {
		return invalidMessage("nonce %q is not 8 or more ASCII letters and digits", truncate(m.Nonce))
	}
	if m.IssuedAt.IsZero() {
		return invalidMessage("issued-at is missing")
	}
	if err := checkTime("Issued At", m.IssuedAt); err != nil {
		return err
	}
	if m.ExpirationTime != nil {
		if err := checkTime("Expiration Time", *m.ExpirationTime); err != nil {
			return err
		}
	}
	if m.NotBefore != nil {
		if err := checkTime("Not Before", *m.NotBefore); err != nil {
			return err
		}
	}
	if m.RequestID != nil && !isRequestID(*m.RequestID) {
		return invalidMessage("request ID %q is not made of RFC 3986 pchar", truncate(*m.RequestID))
	}
	for i, r := range m.Resources {
		if _, err := parseURI(r); err != nil {
			return invalidMessage("resource %d %q is not an RFC 3986 URI: %v", i+1, truncate(r), err)
		}
	}
	return nil
}

// checkStatement allows any printable UTF-8 line. The EIP's ABNF lists only
// RFC 3986 reserved and unreserved characters and space, but says its
// purpose is to exclude line breaks, and wallets and libraries write
// statements with quotes, accents and the like; so this refuses what could
// break or disguise the layout (control characters, Unicode line and
// paragraph separators, invalid UTF-8) and nothing else.
func checkStatement(s string) error {
	if s == "" {
		return invalidMessage("statement is empty (leave it out instead)")
	}
	if !utf8.ValidString(s) {
		return invalidMessage("statement is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return invalidMessage("statement contains %U", r)
		}
	}
	return nil
}

// checkTime refuses a time that String would not write as RFC 3339 text
// denoting the same instant.
func checkTime(name string, t time.Time) error {
	back, err := parseTimestamp(t.Format(time.RFC3339Nano))
	if err != nil || !back.Equal(t) {
		return invalidMessage("%s %s cannot be written as an RFC 3339 date-time", name, t)
	}
	return nil
}

func invalidMessage(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
}

// AddressHex returns m.Address in its EIP-55 form: the text ParseMessage
// read when the address is still the parsed one, else computed.
func (m *Message) AddressHex() string {
	if m.parsedHex != "" && m.Address == m.parsedAddr {
		return m.parsedHex
	}
	return m.Address.Hex()
}

// String returns the EIP-4361 text of m, the bytes a wallet signs. It does
// not validate m: call Validate first on a Message you built.
//
// The text is built with siwe-go (siwe.InitMessage and its Message.String)
// when siwe-go writes every field of m exactly; otherwise (see siweText for
// the fields it cannot write) with this package's own writer. Both give the
// same EIP-4361 text, which ParseMessage reads back.
func (m *Message) String() string {
	if text, ok := m.siweText(); ok {
		return text
	}
	return m.text()
}

// text is this package's EIP-4361 writer, used for what siwe-go cannot write.
func (m *Message) text() string {
	var b strings.Builder
	b.Grow(512)
	if m.Scheme != "" {
		b.WriteString(m.Scheme)
		b.WriteString("://")
	}
	b.WriteString(m.Domain)
	b.WriteString(headerSuffix)
	b.WriteString("\n")
	b.WriteString(m.AddressHex())
	b.WriteString("\n\n")
	if m.Statement != nil {
		b.WriteString(*m.Statement)
		b.WriteString("\n")
	}
	b.WriteString("\nURI: ")
	b.WriteString(m.URI)
	b.WriteString("\nVersion: ")
	b.WriteString(m.Version)
	b.WriteString("\nChain ID: ")
	b.WriteString(strconv.FormatUint(m.ChainID, 10))
	b.WriteString("\nNonce: ")
	b.WriteString(m.Nonce)
	b.WriteString("\nIssued At: ")
	b.WriteString(m.issuedAtText.format(m.IssuedAt))
	if m.ExpirationTime != nil {
		b.WriteString("\nExpiration Time: ")
		b.WriteString(m.expirationTimeText.format(*m.ExpirationTime))
	}
	if m.NotBefore != nil {
		b.WriteString("\nNot Before: ")
		b.WriteString(m.notBeforeText.format(*m.NotBefore))
	}
	if m.RequestID != nil {
		b.WriteString("\nRequest ID: ")
		b.WriteString(*m.RequestID)
	}
	if m.Resources != nil {
		b.WriteString("\nResources:")
		for _, r := range m.Resources {
			b.WriteString("\n- ")
			b.WriteString(r)
		}
	}
	return b.String()
}
