// Package partners owns the partner API: the registry of partners (created
// by operators with the CLI), the authentication of partner servers (a
// Bearer secret or an HS256 request JWT), external-ID login and its
// single-use login codes, token verification, and the management of a
// partner's own users. See README.md for the design of the secret.
package partners

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/walletauth/walletauth/errs"
)

// Prefixes of partner IDs and secrets, so a leaked secret is recognisable
// (secret scanners) and never confused with a user's auth token.
const (
	IDPrefix     = "pt_"
	SecretPrefix = "pts_"
)

// secretBytes is the secret's entropy: 256 bits from the OS CSPRNG.
const secretBytes = 32

// Errors of the partner API.
var (
	ErrPartnerUnauthorized = errs.New("partner_unauthorized", "a valid partner secret or signed request is required")
	ErrSignatureInvalid    = errs.New("request_signature_invalid", "the request signature is invalid")
	ErrReplayed            = errs.New("request_replayed", "this request's jti was already used")
	ErrPartnerNotFound     = errs.New("partner_not_found", "no such partner")
	ErrTokenNotAllowed     = errs.New("token_not_allowed", "client-side login must not carry an Authorization header")
	ErrClientLoginDisabled = errs.New("client_login_disabled", "this partner does not allow client-side login")
	ErrOriginNotAllowed    = errs.New("origin_not_allowed", "this origin is not allowed for this partner")
	ErrExternalIDMissing   = errs.New("external_id_missing", "external_id is required")
	ErrInvalidExternalID   = errs.New("invalid_external_id", fmt.Sprintf("external_id must be 1-%d bytes of printable UTF-8", MaxExternalIDLength))
	ErrInvalidName         = errs.New("invalid_name", fmt.Sprintf("first_name and last_name are at most %d bytes of printable UTF-8", MaxNameLength))
	ErrLoginCodeInvalid    = errs.New("login_code_invalid", "the login code is unknown, used or expired")
	ErrInvalidOrigin       = errs.New("invalid_origin", "an origin is scheme://host[:port] with scheme http or https")
	ErrInvalidPartnerName  = errs.New("invalid_partner_name", "a partner name is 1-200 characters")
)

// Partner is a row of partners.
type Partner struct {
	ID             string `gorm:"primaryKey"`
	Name           string
	SecretHash     []byte
	SigningKey     []byte // the secret sealed under the server's keyring (see Keyring)
	Origins        string // normalised origins, one a line
	ClientLogin    bool
	SignedRequests bool
	Disabled       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName is the registry's table.
func (Partner) TableName() string { return "partners" }

// OriginList returns the partner's allowed origins.
func (p *Partner) OriginList() []string {
	if p.Origins == "" {
		return []string{}
	}
	return strings.Split(p.Origins, "\n")
}

// AllowsOrigin reports whether the Origin header value o is one of the
// partner's origins, compared exactly on scheme, host and port (default
// ports made explicit on both sides).
func (p *Partner) AllowsOrigin(o string) bool {
	n, err := NormalizeOrigin(o)
	if err != nil {
		return false
	}
	return slices.Contains(p.OriginList(), n)
}

// NormalizeOrigin returns origin as scheme://host:port in lower case with
// the port always written (80 for http, 443 for https), so that
// https://a.example and https://a.example:443 compare equal while
// http://a.example and https://a.example do not. Only http and https
// origins with no user, path (other than "/"), query or fragment are
// accepted: ErrInvalidOrigin.
func NormalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		u.ForceQuery || (u.Path != "" && u.Path != "/") || u.Host == "" {
		return "", ErrInvalidOrigin
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", ErrInvalidOrigin
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, " \t\r\n") {
		return "", ErrInvalidOrigin
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// newID returns "pt_" and 16 characters of lower-case base32 (80 bits:
// rand.Text's characters are uniform, 5 bits each).
func newID() string { return IDPrefix + strings.ToLower(rand.Text()[:16]) }

// newSecret returns "pts_" and 32 random bytes in base64url: the secret
// shown once to the operator.
func newSecret() string {
	var b [secretBytes]byte
	mustRandom(b[:])
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// hashSecret is the stored form of a secret. The secret has 256 bits of
// entropy, so an unsalted fast hash is enough: there is nothing to guess.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func mustRandom(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS CSPRNG failing is not recoverable
	}
}
