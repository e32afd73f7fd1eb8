package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/config"
)

// The access-token settings: defaults, the issuer derived from SIWE_URI,
// and the bounds of ACCESS_TOKEN_TTL refused at start.
func TestAccessTokenSettings(t *testing.T) {
	c := mustLoad(t)
	if c.Issuer != "http://127.0.0.1:8080" || c.TokenAudience != "walletauth" || c.AccessTokenTTL != 15*time.Minute {
		t.Fatalf("defaults: issuer %q, audience %q, ttl %v", c.Issuer, c.TokenAudience, c.AccessTokenTTL)
	}
	c = mustLoad(t, "SIWE_DOMAIN", "app.example.com", "SIWE_URI", "https://app.example.com/login?x=1")
	if c.Issuer != "https://app.example.com" {
		t.Fatalf("issuer from SIWE_URI: %q", c.Issuer)
	}
	c = mustLoad(t, "ISSUER", "https://auth.example.com/tenant", "TOKEN_AUDIENCE", "api", "ACCESS_TOKEN_TTL", "1m")
	if c.Issuer != "https://auth.example.com/tenant" || c.TokenAudience != "api" || c.AccessTokenTTL != time.Minute {
		t.Fatalf("set: %+v", c)
	}
	if c := mustLoad(t, "ACCESS_TOKEN_TTL", "24h"); c.AccessTokenTTL != 24*time.Hour {
		t.Fatalf("24h: %v", c.AccessTokenTTL)
	}
	for _, tc := range [][2]string{
		{"ACCESS_TOKEN_TTL", "59s"},
		{"ACCESS_TOKEN_TTL", "0"},
		{"ACCESS_TOKEN_TTL", "24h1s"},
		{"ACCESS_TOKEN_TTL", "soon"},
		{"ISSUER", "app.example.com"},
		{"ISSUER", "ftp://app.example.com"},
		{"ISSUER", "https://app.example.com/"},
		{"ISSUER", "https://app.example.com?a=b"},
		{"ISSUER", "https://app.example.com#x"},
		{"ISSUER", "https://user@app.example.com"},
	} {
		_, err := config.Load(env(tc[0], tc[1]))
		if err == nil || !strings.Contains(err.Error(), config.Prefix+tc[0]) {
			t.Errorf("%s=%q: %v, want an error naming it", tc[0], tc[1], err)
		}
	}
}
