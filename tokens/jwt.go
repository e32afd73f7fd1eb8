package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/cache"
)

// Role is the role claim of every access token (the one PostgREST and
// Supabase read).
const Role = "authenticated"

// Claims are an access token's claims, exactly those of the contract.
// aud is written as a single string. It implements jwt.Claims.
type Claims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      string   `json:"aud"`
	IssuedAt      int64    `json:"iat"`
	ExpiresAt     int64    `json:"exp"`
	ID            string   `json:"jti"`
	SessionID     string   `json:"sid"`
	Role          string   `json:"role"`
	AMR           []string `json:"amr,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Email         string   `json:"email,omitempty"`
	Wallet        string   `json:"wallet,omitempty"`

	kid string // of the key that signed it (Parse)
}

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims: access tokens have no nbf.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }

// Subject is who an access token is for: the user and the session it
// belongs to.
type Subject struct {
	UserID        string
	SessionID     string
	Method        string // the session's method, the amr claim; "" omits amr
	Email         *string
	EmailVerified bool
	Wallet        string     // the primary address, EIP-55; "" when none
	NotAfter      *time.Time // the session's expiry: the token's exp is never later
}

// Issuer mints and parses access tokens.
type Issuer struct {
	keys     *Keys
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	parser   *jwt.Parser
	// verified remembers tokens whose signature and claims were checked,
	// by their SHA-256, until exp: a client sends the same token for its
	// whole life, and an ES256 verification costs ~100 times a hash.
	// Whether the token's session is still live is not cached here (the
	// session cache and its invalidation decide).
	verified *cache.TTLMap[[32]byte, *Claims]
}

// Bounds of the verified-token memo: 8 MiB of heap as verifiedCost
// estimates it, each entry for a minute. The estimate counts the claims'
// strings and the map slot, not what parsing leaves around them: a review
// measured ~0.6 KiB per token, about twice the estimate, so the memo may
// hold up to ~16 MiB (~13,000 tokens).
const (
	verifiedBytes = 8 << 20
	verifiedTTL   = time.Minute
)

// verifiedCost estimates one memo entry: the map's share and the claims
// with their strings.
func verifiedCost(_ [32]byte, c *Claims) int {
	n := cache.EntryBytes[[32]byte, *Claims]() + cache.HeapBytes(int(unsafe.Sizeof(*c)))
	for _, s := range []string{c.Issuer, c.Subject, c.Audience, c.ID, c.SessionID, c.Role, c.Email, c.Wallet, c.kid} {
		n += cache.HeapBytes(len(s))
	}
	n += cache.HeapBytes(16 * len(c.AMR))
	for _, s := range c.AMR {
		n += cache.HeapBytes(len(s))
	}
	return n
}

// NewIssuer returns the minter and parser of access tokens signed by keys,
// with the iss and aud claims given and lifetime ttl.
func NewIssuer(keys *Keys, issuer, audience string, ttl time.Duration, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{
		keys: keys, issuer: issuer, audience: audience, ttl: ttl, now: now,
		verified: cache.NewSizedTTLMap(verifiedBytes, verifiedCost, verifiedTTL, now),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		),
	}
}

// IssuerURL is the iss claim.
func (i *Issuer) IssuerURL() string { return i.issuer }

// TTL is the lifetime of a token.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Mint signs an access token for s with the current key and returns it and
// its lifetime from now in whole seconds (the expires_in of the answer).
// Errors: ErrNoCurrentKey, an expired session (ErrSessionExpired).
func (i *Issuer) Mint(s Subject) (string, int64, error) {
	k, err := i.keys.signer()
	if err != nil {
		return "", 0, err
	}
	now := i.now()
	iat := now.Unix()
	exp := now.Add(i.ttl).Unix()
	if s.NotAfter != nil && s.NotAfter.Unix() < exp {
		exp = s.NotAfter.Unix()
	}
	if exp <= iat {
		return "", 0, ErrSessionExpired
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", 0, fmt.Errorf("tokens: jti entropy: %w", err)
	}
	c := &Claims{
		Issuer: i.issuer, Subject: s.UserID, Audience: i.audience,
		IssuedAt: iat, ExpiresAt: exp, ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		SessionID: s.SessionID, Role: Role, EmailVerified: s.EmailVerified, Wallet: s.Wallet,
	}
	if s.Method != "" {
		c.AMR = []string{s.Method}
	}
	if s.Email != nil {
		c.Email = *s.Email
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.priv)
	if err != nil {
		return "", 0, fmt.Errorf("tokens: sign: %w", err)
	}
	return signed, exp - iat, nil
}

// ErrSessionExpired is Mint's answer for a session past its expiry.
var ErrSessionExpired = errors.New("tokens: the session has expired")

// ErrInvalidToken is Parse's answer for any token it does not accept.
var ErrInvalidToken = errors.New("tokens: invalid access token")

// Parse verifies an access token: ES256 only, a typ of JWT, signed by a
// published key named by its kid, this issuer and audience, not expired,
// with a subject and a session. Errors wrap ErrInvalidToken.
func (i *Issuer) Parse(token string) (*Claims, error) {
	h := sha256.Sum256([]byte(token))
	if c, ok := i.verified.Get(h); ok {
		if i.now().Unix() < c.ExpiresAt && i.keys.published(c.kid) {
			return c, nil
		}
	}
	version := i.verified.Version()
	c := &Claims{}
	_, err := i.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "JWT" {
			return nil, errors.New("typ is not JWT")
		}
		kid, _ := t.Header["kid"].(string)
		c.kid = kid
		pub, ok := i.keys.verifier(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return pub, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.SessionID == "" || c.Role != Role {
		return nil, fmt.Errorf("%w: no subject or session", ErrInvalidToken)
	}
	i.verified.PutIf(h, c, version)
	return c, nil
}

// LooksLikeJWT tells an access token (three dot-separated parts) from an
// opaque auth token (which has no dot) without parsing it.
func LooksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}
