// Package tokenstest wires real access-token issuing for tests: real P-256
// keys in the test's database, sealed by the given sealer (Keyring: a
// partners.Keyring with a random server key).
package tokenstest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/walletauth/walletauth/partners"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens"
)

// Issuer and Audience are the claims of the issuers NewIssuer makes.
const (
	Issuer   = "https://issuer.test"
	Audience = "walletauth"
	TTL      = 15 * time.Minute
)

// NewIssuer loads (creating) the signing keys of db and returns an issuer
// of 15-minute tokens from Issuer for Audience.
func NewIssuer(tb testing.TB, db *storage.DB, sealer tokens.Sealer, now func() time.Time) (*tokens.Issuer, *tokens.Keys) {
	tb.Helper()
	keys := tokens.NewKeys(db, sealer, nil, TTL, now, nil)
	if err := keys.Load(context.Background()); err != nil {
		tb.Fatalf("load signing keys: %v", err)
	}
	return tokens.NewIssuer(keys, Issuer, Audience, TTL, now), keys
}

// Keyring is a server keyring with a random key, sealing the signing keys
// (and partner secrets) as in production.
func Keyring(tb testing.TB) *partners.Keyring {
	tb.Helper()
	k := make([]byte, partners.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	kr, err := partners.NewKeyring(k)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
