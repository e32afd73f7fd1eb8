package tokens_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/tokens/tokenstest"
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const ttl = 15 * time.Minute

func mustKeys(tb testing.TB, db *storage.DB, sealer tokens.Sealer, now func() time.Time) *tokens.Keys {
	tb.Helper()
	k := tokens.NewKeys(db, sealer, nil, ttl, now, nil)
	if err := k.Load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return k
}

// server serves the issuer's discovery and JWKS on a real listener; the
// issuer is the server's own URL, as in production.
type server struct {
	url    string
	issuer *tokens.Issuer
	keys   *tokens.Keys
}

func newServer(t *testing.T, db *storage.DB, sealer tokens.Sealer, now func() time.Time) *server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	srv := httptest.NewServer(r) // routes are added before the first request
	t.Cleanup(srv.Close)
	keys := mustKeys(t, db, sealer, now)
	iss := tokens.NewIssuer(keys, srv.URL, "walletauth", ttl, now)
	iss.Routes(r, nil)
	return &server{url: srv.URL, issuer: iss, keys: keys}
}

func subject() tokens.Subject {
	email := "ann@example.com"
	return tokens.Subject{
		UserID: "0190aaaa-0000-7000-8000-000000000001", SessionID: "00112233445566778899aabbccddeeff",
		Method: "wallet", Email: &email, EmailVerified: true, Wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	}
}

// An issued token verifies with go-oidc, an independent verifier pointed
// at the discovery document, and carries exactly the contract's claims.
func TestIssuedTokenVerifiesWithGoOIDC(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s := newServer(t, db, tokenstest.Keyring(t), time.Now)
		tok, expiresIn, err := s.issuer.Mint(subject())
		if err != nil {
			t.Fatal(err)
		}
		if expiresIn != int64(ttl/time.Second) {
			t.Fatalf("expires_in %d", expiresIn)
		}
		ctx := context.Background()
		p, err := oidc.NewProvider(ctx, s.url)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		idt, err := p.Verifier(&oidc.Config{ClientID: "walletauth"}).Verify(ctx, tok)
		if err != nil {
			t.Fatalf("go-oidc refused the token: %v", err)
		}
		if idt.Subject != subject().UserID || idt.Issuer != s.url {
			t.Fatalf("token %+v", idt)
		}
		var claims map[string]any
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		want := []string{"iss", "sub", "aud", "iat", "exp", "jti", "sid", "role", "amr", "email_verified", "email", "wallet"}
		if len(claims) != len(want) {
			t.Errorf("claims %v, want exactly %v", claims, want)
		}
		for _, k := range want {
			if _, ok := claims[k]; !ok {
				t.Errorf("claim %s missing: %v", k, claims)
			}
		}
		if claims["aud"] != "walletauth" || claims["role"] != "authenticated" || claims["sid"] != subject().SessionID ||
			claims["email"] != "ann@example.com" || claims["email_verified"] != true || claims["wallet"] != subject().Wallet {
			t.Errorf("claims %v", claims)
		}
		if amr, _ := claims["amr"].([]any); len(amr) != 1 || amr[0] != "wallet" {
			t.Errorf("amr %v", claims["amr"])
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != ttl.Seconds() {
			t.Errorf("exp-iat = %v", exp-iat)
		}
		header := decodeSegment(t, tok, 0)
		if header["alg"] != "ES256" || header["typ"] != "JWT" || header["kid"] == "" || len(header) != 3 {
			t.Errorf("header %v", header)
		}
		// A user without email or wallet gets neither claim.
		bare, _, err := s.issuer.Mint(tokens.Subject{UserID: "u2", SessionID: subject().SessionID, Method: "email"})
		if err != nil {
			t.Fatal(err)
		}
		payload := decodeSegment(t, bare, 1)
		if _, ok := payload["email"]; ok {
			t.Errorf("email claim for a user without one: %v", payload)
		}
		if _, ok := payload["wallet"]; ok {
			t.Errorf("wallet claim for a user without one: %v", payload)
		}

		// The documents.
		resp, err := http.Get(s.url + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if doc["issuer"] != s.url || doc["jwks_uri"] != s.url+"/.well-known/jwks.json" ||
			resp.Header.Get("Cache-Control") != tokens.DiscoveryCacheControl {
			t.Errorf("discovery %v, %v", doc, resp.Header)
		}
		for _, f := range []string{"id_token_signing_alg_values_supported", "subject_types_supported", "response_types_supported", "claims_supported"} {
			if _, ok := doc[f]; !ok {
				t.Errorf("discovery lacks %s", f)
			}
		}
		jwks := getJWKS(t, s.url)
		if len(jwks) != 1 || jwks[0]["kty"] != "EC" || jwks[0]["crv"] != "P-256" || jwks[0]["kid"] != header["kid"] ||
			jwks[0]["use"] != "sig" || jwks[0]["alg"] != "ES256" || jwks[0]["x"] == nil || jwks[0]["y"] == nil || jwks[0]["d"] != nil {
			t.Errorf("jwks %v", jwks)
		}
	})
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func getJWKS(t *testing.T, base string) []map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != tokens.JWKSCacheControl {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, resp.Header)
	}
	var set struct{ Keys []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

// Tampered and foreign tokens are refused by Parse, and by go-oidc too.
func TestTamperedTokensAreRefused(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	clock := clocktest.New(testStart)
	keys := mustKeys(t, db, tokenstest.Keyring(t), clock.Now)
	iss := tokens.NewIssuer(keys, "https://issuer.test", "walletauth", ttl, clock.Now)
	good, _, err := iss.Mint(subject())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Parse(good); err != nil {
		t.Fatalf("the untampered token: %v", err)
	}
	parts := strings.Split(good, ".")
	header := decodeSegment(t, good, 0)
	kid := header["kid"].(string)
	payload := decodeSegment(t, good, 1)

	// The public key, as an attacker has it (JWKS), for the HS256 confusion.
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(keys.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	jwkJSON := []byte(set.Keys[0])
	var pubDER []byte
	{
		var k struct{ X, Y string }
		_ = json.Unmarshal(jwkJSON, &k)
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		y, _ := base64.RawURLEncoding.DecodeString(k.Y)
		pub, perr := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if perr != nil {
			t.Fatal(perr)
		}
		pubDER, err = x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
		t.Helper()
		tk := jwt.NewWithClaims(m, claims)
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range payload {
			c[k] = v
		}
		change(c)
		return c
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	reencode := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	changedPayload := claims(func(c jwt.MapClaims) { c["sub"] = "someone-else" })

	cases := []struct{ name, token string }{
		{"changed payload", parts[0] + "." + reencode(changedPayload) + "." + parts[2]},
		{"changed signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(func(jwt.MapClaims) {}), kid)},
		{"alg none, original signature", reencode(map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the public key (PEM)", sign(jwt.SigningMethodHS256, pubPEM, claims(func(jwt.MapClaims) {}), kid)},
		{"HS256 keyed with the public key (DER)", sign(jwt.SigningMethodHS256, pubDER, claims(func(jwt.MapClaims) {}), kid)},
		{"HS256 keyed with the JWK", sign(jwt.SigningMethodHS256, jwkJSON, claims(func(jwt.MapClaims) {}), kid)},
		{"unknown kid, signed by another key", sign(jwt.SigningMethodES256, otherKey, claims(func(jwt.MapClaims) {}), "not-a-kid")},
		{"known kid, signed by another key", sign(jwt.SigningMethodES256, otherKey, claims(func(jwt.MapClaims) {}), kid)},
		{"no kid", sign(jwt.SigningMethodES256, otherKey, claims(func(jwt.MapClaims) {}), "")},
		{"ES384", sign(jwt.SigningMethodES384, mustP384(t), claims(func(jwt.MapClaims) {}), kid)},
		{"not a JWT", "a.b.c"},
		{"empty", ""},
	}
	for _, tc := range cases {
		if _, err := iss.Parse(tc.token); !errors.Is(err, tokens.ErrInvalidToken) {
			t.Errorf("%s: Parse = %v, want ErrInvalidToken", tc.name, err)
		}
	}

	// Claims this service would refuse although the signature is its own:
	// an issuer for another audience or issuer, and expiry.
	for _, tc := range []struct {
		name string
		iss  *tokens.Issuer
	}{
		{"wrong aud", tokens.NewIssuer(keys, "https://issuer.test", "another-audience", ttl, clock.Now)},
		{"wrong iss", tokens.NewIssuer(keys, "https://other.test", "walletauth", ttl, clock.Now)},
	} {
		if _, err := tc.iss.Parse(good); !errors.Is(err, tokens.ErrInvalidToken) {
			t.Errorf("%s: Parse = %v, want ErrInvalidToken", tc.name, err)
		}
	}
	clock.Advance(ttl - time.Second)
	if _, err := iss.Parse(good); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := iss.Parse(good); !errors.Is(err, tokens.ErrInvalidToken) {
		t.Errorf("expired: Parse = %v, want ErrInvalidToken", err)
	}
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The exp of a token is never past its session's expiry; an expired
// session gets none.
func TestMintCapsAtTheSessionExpiry(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	clock := clocktest.New(testStart)
	iss := tokens.NewIssuer(mustKeys(t, db, tokenstest.Keyring(t), clock.Now), "https://issuer.test", "walletauth", ttl, clock.Now)
	s := subject()
	end := testStart.Add(5 * time.Minute)
	s.NotAfter = &end
	tok, expiresIn, err := iss.Mint(s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if expiresIn != 300 || c.ExpiresAt != end.Unix() {
		t.Fatalf("expires_in %d, exp %d, want 300 and %d", expiresIn, c.ExpiresAt, end.Unix())
	}
	past := testStart.Add(-time.Second)
	s.NotAfter = &past
	if _, _, err := iss.Mint(s); !errors.Is(err, tokens.ErrSessionExpired) {
		t.Fatalf("Mint for an expired session = %v", err)
	}
}

// Keys: created once on first start, shared by every instance (also when
// they start together), sealed (the database alone does not open them),
// rotated with the old key published until its tokens expired, then
// pruned.
func TestKeysLifecycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		clock := clocktest.New(testStart)
		sealer := tokenstest.Keyring(t)
		// Concurrent first starts agree on one key.
		const n = 4
		ks := make([]*tokens.Keys, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			ks[i] = tokens.NewKeys(db, sealer, nil, ttl, clock.Now, nil)
			wg.Go(func() { errs[i] = ks[i].Load(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Load %d: %v", i, err)
			}
		}
		list, err := ks[0].List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || !list[0].Current || list[0].RetiredAt != nil {
			t.Fatalf("after first starts: %+v", list)
		}
		first := list[0].KID
		for i := range n {
			if got := string(ks[i].JWKS()); !strings.Contains(got, first) {
				t.Fatalf("instance %d JWKS %s lacks %s", i, got, first)
			}
		}

		// Sealed: another server key cannot open it.
		if err := tokens.NewKeys(db, tokenstest.Keyring(t), nil, ttl, clock.Now, nil).Load(ctx); err == nil {
			t.Fatal("keys opened under another server key")
		}
		var raw []byte
		if err := db.Raw("SELECT private_key FROM signing_keys WHERE kid = ?", first).Row().Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(raw); err == nil || raw[0] != 1 {
			t.Fatal("the private key is stored readable")
		}

		a, b := ks[0], ks[1]
		issA := tokens.NewIssuer(a, "https://issuer.test", "walletauth", ttl, clock.Now)
		issB := tokens.NewIssuer(b, "https://issuer.test", "walletauth", ttl, clock.Now)
		old, _, err := issA.Mint(subject())
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		rotated, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.KID == first {
			t.Fatal("rotation kept the kid")
		}
		// A signs with the new key at once; B after its reload (the bus or
		// its poll: Run), and both verify both keys meanwhile.
		fresh, _, err := issA.Mint(subject())
		if err != nil {
			t.Fatal(err)
		}
		if kid := decodeSegment(t, fresh, 0)["kid"]; kid != rotated.KID {
			t.Fatalf("A signs with %v after rotating to %s", kid, rotated.KID)
		}
		if err := b.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{old, fresh} {
			for _, iss := range []*tokens.Issuer{issA, issB} {
				if _, err := iss.Parse(tok); err != nil {
					t.Fatalf("after rotation: %v", err)
				}
			}
		}
		jwks := string(b.JWKS())
		if !strings.Contains(jwks, first) || !strings.Contains(jwks, rotated.KID) || strings.Index(jwks, rotated.KID) > strings.Index(jwks, first) {
			t.Fatalf("JWKS after rotation (current first, then the retired): %s", jwks)
		}
		list, err = a.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].KID != rotated.KID || !list[0].Current || list[1].Current || list[1].RetiredAt == nil ||
			!list[1].PublishedUntil.Equal(list[1].RetiredAt.Add(ttl+tokens.PublishMargin)) {
			t.Fatalf("list after rotation: %+v", list)
		}

		// The retired key stays until every token it signed has expired
		// (plus the margin), then leaves the JWKS and is pruned.
		clock.Advance(ttl + tokens.PublishMargin - time.Second)
		if n, err := a.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("early prune: %d, %v", n, err)
		}
		if err := a.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(a.JWKS()), first) {
			t.Fatal("the retired key left the JWKS too early")
		}
		clock.Advance(time.Second)
		if _, err := issB.Parse(old); err == nil {
			t.Fatal("a token of a key past its publication still verifies")
		}
		if n, err := a.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		if err := a.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := string(a.JWKS()); strings.Contains(got, first) || !strings.Contains(got, rotated.KID) {
			t.Fatalf("JWKS after prune: %s", got)
		}
	})
}

// With the database gone, the JWKS still answers, from memory, and tokens
// are still minted and verified (only memory is read on those paths).
func TestJWKSWithoutTheDatabase(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	s := newServer(t, db, tokenstest.Keyring(t), time.Now)
	kid := decodeSegment(t, mustMint(t, s.issuer), 0)["kid"]
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	jwks := getJWKS(t, s.url)
	if len(jwks) != 1 || jwks[0]["kid"] != kid || time.Since(start) > 5*time.Second {
		t.Fatalf("JWKS without the database: %v after %v", jwks, time.Since(start))
	}
	if _, err := s.issuer.Parse(mustMint(t, s.issuer)); err != nil {
		t.Fatal(err)
	}
}

func mustMint(t *testing.T, iss *tokens.Issuer) string {
	t.Helper()
	tok, _, err := iss.Mint(subject())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
