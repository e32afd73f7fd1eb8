package main

// Two instances on one PostgreSQL and one Redis (revocations, rate limits,
// a mailed code used once), and the limit of the in-process challenge store
// without Redis.

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
)

// Two instances on one PostgreSQL and one Redis: what one revokes, the other
// refuses; rate limits count across both.
func TestMultiInstance(t *testing.T) {
	env := postgresEnv(t)
	redisURL(t, true)
	clock := newTestClock()
	a := newTestApp(t, withEnv(env...), withEnv("EMAIL_FAIL_PER_IP", "3/15m"), withClock(clock))
	b := newTestApp(t, withEnv(env...), withEnv("EMAIL_FAIL_PER_IP", "3/15m"), withClock(clock))
	// Until its invalidation bus is subscribed an instance bypasses its
	// caches; wait, so that what follows exercises cached sessions.
	waitCachesLive(t, a, b)

	email := apitest.UniqueEmail(t)
	up := a.Signup(t, email)
	onB := b.EmailLogin(t, email, apitest.Password)
	if onB.User.ID != up.User.ID {
		t.Fatalf("login on B found user %q, want %q", onB.User.ID, up.User.ID)
	}
	b.Me(t, up.AuthToken)
	a.Me(t, onB.AuthToken)

	t.Run("logout", func(t *testing.T) {
		tok := b.EmailLogin(t, email, apitest.Password).AuthToken
		a.Me(t, tok)
		b.Me(t, tok) // B has seen it: a cache would hold it now
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, apitest.Bearer(tok)...), http.StatusNoContent)
		wantRevokedWithin(t, b, tok)
	})
	t.Run("logout-all", func(t *testing.T) {
		b.Me(t, up.AuthToken)
		b.Me(t, onB.AuthToken)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout-all", nil, apitest.Bearer(up.AuthToken)...), http.StatusNoContent)
		wantRevokedWithin(t, b, up.AuthToken)
		wantRevokedWithin(t, b, onB.AuthToken)
		wantRevokedWithin(t, a, onB.AuthToken)
	})
	t.Run("delete", func(t *testing.T) {
		u := a.Signup(t, apitest.UniqueEmail(t))
		b.Me(t, u.AuthToken)
		apitest.WantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me", nil, apitest.Bearer(u.AuthToken)...), http.StatusNoContent)
		wantRevokedWithin(t, b, u.AuthToken)
	})
	t.Run("rate limits are shared", func(t *testing.T) {
		b.IP = a.IP
		for i := 0; i < 3; i++ {
			app := a
			if i%2 == 1 {
				app = b
			}
			apitest.WantError(t, app.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password}),
				http.StatusUnauthorized, "invalid_credentials")
		}
		for _, app := range []*testApp{a, b} {
			rec := app.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password})
			apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		}
	})
}

// waitCachesLive waits until the apps' cache invalidation buses are healthy.
func waitCachesLive(t testing.TB, apps ...*testApp) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, app := range apps {
		for app.bus != nil && !app.bus.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("the cache invalidation bus did not become healthy within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// revocationDelay is how soon the contract wants a revocation to hold on
// every instance.
const revocationDelay = time.Second

// wantRevokedWithin checks that token is refused by app within
// revocationDelay (other instances learn of revocations asynchronously).
func wantRevokedWithin(t testing.TB, app *testApp, token string) {
	t.Helper()
	deadline := time.Now().Add(revocationDelay)
	for {
		rec := app.do(t, http.MethodGet, "/v1/users/me", nil, apitest.Bearer(token)...)
		if rec.Code == http.StatusUnauthorized {
			apitest.WantError(t, rec, http.StatusUnauthorized, "unauthorized")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted (%d) %v after its revocation on another instance", rec.Code, revocationDelay)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMemoryChallengesLimit: without Redis the process holds at most
// MEMORY_CHALLENGES_MAX wallet nonces and challenges; past it new ones are
// refused 503 unavailable in the contract's shape (never a 500) until
// expired ones make room, while everything else that uses the store
// (here: an email sign-up's failure counter) goes on working.
func TestMemoryChallengesLimit(t *testing.T) {
	a := newTestApp(t, withEnv("MEMORY_CHALLENGES_MAX", "3", "CHALLENGE_PER_IP", "0"))
	for i := range 3 {
		if rec := a.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil); rec.Code != http.StatusOK {
			t.Fatalf("nonce %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	apitest.WantError(t, a.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil), http.StatusServiceUnavailable, "unavailable")
	// A challenge is two entries (its nonce and the address's last challenge).
	apitest.WantError(t, a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address=0x52908400098527886E0F7030069857D2E4169EE7", nil), http.StatusServiceUnavailable, "unavailable")
	// Failed email logins still count (their counters are new keys of the
	// shared store, which the challenges cannot fill).
	email := apitest.UniqueEmail(t)
	a.Signup(t, email)
	for range 3 {
		apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": "not the password at all"}), http.StatusUnauthorized, "invalid_credentials")
	}
	// The nonces expire with the challenge lifetime (5 min + skew), and make room.
	a.clock.Advance(6 * time.Minute)
	if rec := a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address=0x52908400098527886E0F7030069857D2E4169EE7", nil); rec.Code != http.StatusOK {
		t.Fatalf("challenge after expiry: %d %s", rec.Code, rec.Body)
	}
}

// Two instances sharing PostgreSQL and Redis: a code asked for on one is
// accepted once, on the other; the other's concurrent try is refused.
func TestEmailCodeAcrossTwoInstances(t *testing.T) {
	env := postgresEnv(t)
	if redisURL(t, true) == "" {
		return
	}
	clock := newTestClock()
	a := newTestApp(t, withEnv(env...), withClock(clock))
	b := newTestApp(t, withEnv(env...), withClock(clock))
	b.IP = a.IP
	email := apitest.UniqueEmail(t)
	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	code := b.lastCode(t, email)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := a
			if i%2 == 1 {
				app = b
			}
			codes[i] = app.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}).Code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d of 8 concurrent uses accepted, want 1 (%v)", ok, codes)
	}
}
