package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
)

// WriteLogin writes what encoding LoginResponse writes, byte for byte, for
// a cached user (view JSON made once) and for one read afresh, with a
// valid access token of the session.
func TestWriteLoginIsLoginResponse(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	us := users.NewStore(db, nil, nil)
	us.EnableCache(cache.NewLocalBus(), 1<<20, time.Minute)
	ctx := context.Background()
	email := "Ann+<x>@example.com" // escaped by encoding/json: <, >
	u, err := us.Create(ctx, users.NewUser{Username: "ann_1", Email: &email}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.AddWallet(ctx, users.Wallet{Address: make([]byte, 20), UserID: u.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
		t.Fatal(err)
	}
	cached, err := us.GetCached(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := us.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := us.Create(ctx, users.NewUser{}, nil) // no email, no wallet
	if err != nil {
		t.Fatal(err)
	}
	s := auth.NewSessions(db, nil, 0, nil)
	issuer, _ := tokenstest.NewIssuer(t, db, tokenstest.Keyring(t), nil)
	s.UseAccessTokens(issuer, us)
	tok, _, err := s.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		u       *users.User
		token   string
		status  int
		created bool
	}{
		{"cached", cached, tok, http.StatusOK, false},
		{"fresh", fresh, tok, http.StatusCreated, true},
		{"no email, no wallet", bare, tok, http.StatusOK, false},
		{"a token that needs escaping", cached, auth.TokenPrefix + `a"b\c<d>` + "\u2028", http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(rec)
			if err := s.WriteLogin(c, tc.status, auth.MethodEmail, tc.token, tc.u, tc.created); err != nil {
				t.Fatal(err)
			}
			var got auth.LoginResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			claims, err := issuer.Parse(got.AccessToken)
			if err != nil {
				t.Fatalf("access token: %v", err)
			}
			if claims.Subject != tc.u.ID || claims.SessionID != auth.SessionID(auth.HashToken(tc.token)) {
				t.Fatalf("claims %+v", claims)
			}
			want, err := json.Marshal(auth.LoginResponse{
				LoginTokens: auth.LoginTokens{AuthToken: tc.token, AccessToken: got.AccessToken, TokenType: "Bearer", ExpiresIn: int64(tokenstest.TTL / time.Second)},
				User:        tc.u.View(), Created: tc.created,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Body.String(); got != string(want) {
				t.Fatalf("WriteLogin wrote\n%s\nwant\n%s", got, want)
			}
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, content type %q, cache control %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
			}
		})
	}
}
