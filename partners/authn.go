package partners

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/ratelimit"
)

// maxJTILength bounds the jti claim (it becomes a key of the shared store).
const maxJTILength = 256

type ctxKey struct{}

// WithPartner returns ctx carrying the authenticated partner.
func WithPartner(ctx context.Context, p Partner) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the partner authenticated by Authenticate.
func FromContext(ctx context.Context) (Partner, bool) {
	p, ok := ctx.Value(ctxKey{}).(Partner)
	return p, ok
}

// requestClaims are the claims of a partner's request JWT.
type requestClaims struct {
	jwt.RegisteredClaims
	BodySHA256 *string `json:"body_sha256"`
}

// Authenticate is the middleware of /v1/partner/…: it accepts
// "Authorization: Bearer <secret>" (unless the partner was created with
// signed requests) or "Authorization: Bearer <JWT>" signed HS256 with the
// secret, and puts the partner in the request context (FromContext).
//
// Answers: 401 partner_unauthorized (no credentials, an unknown or rotated
// secret, an iss naming no partner, a disabled partner); 401
// request_signature_invalid (a malformed JWT, any algorithm but HS256, a
// bad signature — which includes a JWT signed with a rotated secret or
// with another partner's secret —, a missing or out-of-window iat, a
// missing jti, a missing or wrong body_sha256, and a plain secret from a
// signed-requests partner); 401 request_replayed (a jti seen in the last
// 10 minutes); 429 rate_limited; 503 unavailable when the database or
// the shared store cannot be asked (fail closed).
func (s *Service) Authenticate() gin.HandlerFunc {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(), // iat, exp, nbf checked below with the injected clock
		jwt.WithJSONNumber(),
	)
	return func(c *gin.Context) {
		p, err := s.authenticate(c, parser)
		if err != nil {
			api.Abort(c, err)
			return
		}
		c.Request = c.Request.WithContext(WithPartner(c.Request.Context(), p))
		c.Next()
	}
}

func (s *Service) authenticate(c *gin.Context, parser *jwt.Parser) (Partner, error) {
	ctx := c.Request.Context()
	tok, ok := auth.BearerToken(c.GetHeader("Authorization"))
	if !ok {
		return Partner{}, ErrPartnerUnauthorized
	}
	if looksLikeJWT(tok) {
		return s.verifyJWT(c, parser, tok)
	}
	if !strings.HasPrefix(tok, SecretPrefix) || len(tok) > 128 {
		return Partner{}, ErrPartnerUnauthorized
	}
	p, err := s.reg.BySecret(ctx, tok)
	if err != nil {
		return Partner{}, err
	}
	if p.Disabled {
		return Partner{}, ErrPartnerUnauthorized.WithMessage("this partner is disabled")
	}
	if p.SignedRequests {
		return Partner{}, ErrSignatureInvalid.WithMessage("this partner accepts only signed requests: send an HS256 JWT, not the secret")
	}
	if err := s.allow(ctx, "partner", p.ID); err != nil {
		return Partner{}, err
	}
	return p, nil
}

// looksLikeJWT reports whether tok has the shape of a compact JWS: three
// base64url parts (the last may be empty: alg "none"). Partner secrets
// contain no dot.
func looksLikeJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			ch := p[i]
			if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '=') {
				return false
			}
		}
	}
	return true
}

func (s *Service) verifyJWT(c *gin.Context, parser *jwt.Parser, tok string) (Partner, error) {
	ctx := c.Request.Context()
	body, err := api.ReadBody(c)
	if err != nil {
		return Partner{}, err
	}
	var (
		claims  requestClaims
		partner Partner
		keyErr  error
	)
	_, err = parser.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) {
		p, err := s.reg.Get(ctx, claims.Issuer)
		switch {
		case errors.Is(err, ErrPartnerNotFound):
			keyErr = ErrPartnerUnauthorized.WithMessage("the JWT's iss names no partner")
		case err != nil:
			keyErr = err
		case p.Disabled:
			keyErr = ErrPartnerUnauthorized.WithMessage("this partner is disabled")
		}
		if keyErr != nil {
			return nil, keyErr
		}
		key, err := s.reg.SigningKey(p)
		if errors.Is(err, errNoSigningKey) {
			keyErr = ErrSignatureInvalid.WithMessage("this partner has no signing key yet: an operator must rotate its secret")
			return nil, keyErr
		}
		if err != nil {
			// Sealed under a server key this instance lacks: a configuration
			// fault (the server warns of unreadable keys at start). The JWT
			// cannot be verified, so it is refused, never accepted.
			keyErr = ErrSignatureInvalid.WithMessage("this server cannot open the partner's signing key: its WALLETAUTH_SECRET_KEY differs from the one the key was sealed with; rotate the partner's secret or fix the server key").
				Wrap(fmt.Errorf("partner %s: %w", p.ID, err))
			return nil, keyErr
		}
		partner = p
		return key, nil
	})
	if keyErr != nil {
		return Partner{}, keyErr
	}
	if err != nil {
		return Partner{}, signatureError(err)
	}

	now := s.now()
	if claims.IssuedAt == nil {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT has no iat")
	}
	if d := now.Sub(claims.IssuedAt.Time); d > IATWindow || d < -IATWindow {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT's iat is more than %d s from the server's time", int(IATWindow.Seconds()))
	}
	if claims.ExpiresAt != nil && !now.Before(claims.ExpiresAt.Time) {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT has expired")
	}
	if claims.NotBefore != nil && now.Before(claims.NotBefore.Time) {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT is not valid yet (nbf)")
	}
	if claims.ID == "" || len(claims.ID) > maxJTILength {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT needs a jti of 1-%d characters", maxJTILength)
	}
	if claims.BodySHA256 == nil {
		return Partner{}, ErrSignatureInvalid.WithMessage("the JWT has no body_sha256")
	}
	want := bodyHash(body)
	got := strings.TrimRight(*claims.BodySHA256, "=")
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return Partner{}, ErrSignatureInvalid.WithMessage("body_sha256 does not match the request body")
	}

	if err := s.allow(ctx, "partner", partner.ID); err != nil {
		return Partner{}, err
	}
	// Last, once everything else holds: remember the jti in the shared
	// store, so a replay is refused on every instance. A store failure
	// refuses the request (503): a jti is never accepted unchecked.
	fresh, err := s.store.SetNX(ctx, "pjti:"+partner.ID+":"+claims.ID, []byte{1}, jtiTTL)
	if err != nil {
		return Partner{}, fmt.Errorf("partners: record jti: %w", err)
	}
	if !fresh {
		return Partner{}, ErrReplayed
	}
	return partner, nil
}

// signatureError explains a JWT the parser refused.
func signatureError(err error) error {
	e := ErrSignatureInvalid
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return e.WithMessage("the JWT is malformed")
	case errors.Is(err, jwt.ErrTokenUnverifiable), strings.Contains(err.Error(), "signing method"):
		return e.WithMessage("only HS256 request JWTs are accepted")
	}
	return e.WithMessage("the JWT's signature does not verify with the current secret of its iss")
}

// allow counts one request of partner id against the per-partner rate.
func (s *Service) allow(ctx context.Context, name, id string) error {
	if s.limiter == nil || s.opt.Rate.Max == 0 {
		return nil
	}
	ok, retry, err := s.limiter.Allow(ctx, name, id, ratelimit.Limit{Max: s.opt.Rate.Max, Window: s.opt.Rate.Window})
	if err != nil {
		return err
	}
	if !ok {
		return api.ErrRateLimited.WithRetryAfter(int(math.Ceil(retry.Seconds())))
	}
	return nil
}

// codeFailures applies Options.CodeFailPerIP to client ip: with hit false
// it refuses (429) an ip that used up its failures, with hit true it counts
// one. A login code cannot be guessed (256 bits), but each guess costs a
// store round trip, and nothing else bounds them.
func (s *Service) codeFailures(ctx context.Context, ip string, hit bool) error {
	r := s.opt.CodeFailPerIP
	if s.limiter == nil || r.Max == 0 {
		return nil
	}
	lim := ratelimit.Limit{Max: r.Max, Window: r.Window}
	if hit {
		return s.limiter.Hit(ctx, "login-code-fail-ip", ip, lim)
	}
	over, retry, err := s.limiter.Exceeded(ctx, "login-code-fail-ip", ip, lim)
	if err != nil {
		return err
	}
	if over {
		return api.ErrRateLimited.WithMessage("too many invalid login codes from this address, retry later").
			WithRetryAfter(int(math.Ceil(retry.Seconds())))
	}
	return nil
}

// bodyHash is base64url (no padding) of the SHA-256 of body: the
// body_sha256 claim of a request JWT.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
