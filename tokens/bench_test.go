package tokens_test

import (
	"testing"

	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/tokens/tokenstest"
)

// BenchmarkMint: one access token (claims, ES256 signature, encoding), what
// every login answer adds.
func BenchmarkMint(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	iss := tokens.NewIssuer(mustKeys(b, db, tokenstest.Keyring(b), nil), "https://issuer.test", "walletauth", ttl, nil)
	s := subject()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Mint(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse: Parse of a token seen before (the memo of verified
// tokens): what a client's repeated requests with one access token cost
// before the session check.
func BenchmarkParse(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	iss := tokens.NewIssuer(mustKeys(b, db, tokenstest.Keyring(b), nil), "https://issuer.test", "walletauth", ttl, nil)
	tok, _, err := iss.Mint(subject())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFirst: the first Parse of a token (ES256 verification and
// claims; a fresh Issuer each time, so the memo is empty).
func BenchmarkParseFirst(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	keys := mustKeys(b, db, tokenstest.Keyring(b), nil)
	tok, _, err := tokens.NewIssuer(keys, "https://issuer.test", "walletauth", ttl, nil).Mint(subject())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.NewIssuer(keys, "https://issuer.test", "walletauth", ttl, nil).Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
