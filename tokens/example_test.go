package tokens_test

import (
	"context"

	"github.com/coreos/go-oidc/v3/oidc"
)

// verifyAccessToken holds the partner guide's Go verification snippet
// (docs/partners.md, "Verifying access tokens"), kept here so that it
// compiles; clients/js/test checks that the guide shows it as it is.
func verifyAccessToken(ctx context.Context, accessToken string) error {
	provider, err := oidc.NewProvider(ctx, "https://app.example.com") // WALLETAUTH_ISSUER
	if err != nil {
		return err
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "walletauth"}) // the aud
	tok, err := verifier.Verify(ctx, accessToken)                       // signature, iss, aud, exp
	if err != nil {
		return err // 401
	}
	var claims struct {
		SessionID string   `json:"sid"`
		Wallet    string   `json:"wallet"`
		AMR       []string `json:"amr"`
	}
	if err := tok.Claims(&claims); err != nil {
		return err
	}
	// tok.Subject is the user id.
	_ = claims
	return nil
}

func Example_verifyAccessToken() {
	_ = verifyAccessToken
}
