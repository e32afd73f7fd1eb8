package tokens

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Caching of the public documents. The JWKS is read afresh from the
// database on every request, so walletauth itself shows a rotation at
// once; verifiers may keep it max-age seconds, and standard ones (jose's
// createRemoteJWKSet, go-oidc) refetch it when a token names a kid they
// have not seen, so a rotation never needs them to wait.
const (
	freshTimeout          = time.Second
	JWKSCacheControl      = "public, max-age=300"
	DiscoveryCacheControl = "public, max-age=3600"
)

// ClaimsSupported lists the claims of access tokens.
var claimsSupported = []string{"iss", "sub", "aud", "iat", "exp", "jti", "sid", "role", "amr", "email", "email_verified", "wallet"}

// Routes registers GET /.well-known/jwks.json and
// GET /.well-known/openid-configuration on r (the root router).
func (i *Issuer) Routes(r gin.IRoutes, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	discovery, _ := json.Marshal(map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              i.JWKSURI(),
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"id_token"},
		"claims_supported":                      claimsSupported,
	})
	r.GET("/.well-known/jwks.json", func(c *gin.Context) {
		// Bounded: with the database unreachable the JWKS still answers
		// at once, from memory.
		ctx, cancel := context.WithTimeout(c.Request.Context(), freshTimeout)
		err := i.keys.Fresh(ctx)
		cancel()
		if err != nil {
			// The last snapshot still verifies every token this service
			// signs; a verifier is better served by it than by a 503.
			log.Warn("JWKS served from memory: the signing keys could not be reloaded", "error", err)
		}
		c.Header("Cache-Control", JWKSCacheControl)
		c.Data(http.StatusOK, "application/json", i.keys.JWKS())
	})
	r.GET("/.well-known/openid-configuration", func(c *gin.Context) {
		c.Header("Cache-Control", DiscoveryCacheControl)
		c.Data(http.StatusOK, "application/json", discovery)
	})
}

// JWKSURI is the absolute URL of the JWKS: under the issuer, where OIDC
// discovery looks for it.
func (i *Issuer) JWKSURI() string { return i.issuer + "/.well-known/jwks.json" }
