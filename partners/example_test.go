package partners_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signRequest is the partner guide's Go signing snippet (docs/partners.md,
// "Signed requests"), kept here so that it compiles; clients/js/test
// checks that the guide shows it as it is.
func signRequest(partnerID, secret string, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss":         partnerID,
		"iat":         time.Now().Unix(),
		"jti":         hex.EncodeToString(jti),
		"body_sha256": base64.RawURLEncoding.EncodeToString(sum[:]),
	}).SignedString([]byte(secret))
}

func Example_signRequest() {
	_, _ = signRequest("pt_example", "pts_example", []byte(`{"external_id":"42"}`))
}
