package main

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/wallet"
)

type activityEventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	At        string          `json:"at"`
	Method    *string         `json:"method"`
	IP        *string         `json:"ip"`
	UserAgent *string         `json:"user_agent"`
	Detail    json.RawMessage `json:"detail"`
}

type activityPageJSON struct {
	Events     []activityEventJSON `json:"events"`
	NextCursor *string             `json:"next_cursor"`
}

// activityUA is the User-Agent of every request of the activity tests.
const activityUA = "activity-test/1.0"

// walletLoginUA signs in with a fresh key through the router, sending
// activityUA, and returns the auth token.
func (a *testApp) walletLoginUA(t *testing.T) string {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(k.PublicKey).Hex()
	rec := a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+addr, nil, "User-Agent", activityUA)
	apitest.WantStatus(t, rec, http.StatusOK)
	var ch struct{ Message string }
	apitest.DecodeJSON(t, rec, &ch)
	sig, err := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), k)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	rec = a.do(t, http.MethodPost, "/v1/auth/wallet/login", map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}, "User-Agent", activityUA)
	apitest.WantStatus(t, rec, http.StatusOK)
	var lr apitest.Login
	apitest.DecodeJSON(t, rec, &lr)
	return lr.AuthToken
}

// activityPage reads one page of the activity of token's user.
func (a *testApp) activityPage(t *testing.T, token, query string) activityPageJSON {
	t.Helper()
	rec := a.do(t, http.MethodGet, "/v1/users/me/activity"+query, nil, apitest.Bearer(token)...)
	apitest.WantStatus(t, rec, http.StatusOK)
	var p activityPageJSON
	apitest.DecodeJSON(t, rec, &p)
	return p
}

func eventTypes(p activityPageJSON) []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.Type)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestActivityLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		ua := []string{"User-Agent", activityUA}

		// Email: signup (a login), a wrong password, a login, a logout.
		email := apitest.UniqueEmail(t)
		rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]any{"email": email, "password": apitest.Password}, ua...)
		apitest.WantStatus(t, rec, http.StatusCreated)
		var first apitest.Login
		apitest.DecodeJSON(t, rec, &first)
		a.clock.Advance(time.Second)
		rec = a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]any{"email": email, "password": "wrong-" + apitest.Password}, ua...)
		apitest.WantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
		a.clock.Advance(time.Second)
		rec = a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]any{"email": email, "password": apitest.Password}, ua...)
		apitest.WantStatus(t, rec, http.StatusOK)
		var second apitest.Login
		apitest.DecodeJSON(t, rec, &second)
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, append(apitest.Bearer(second.AuthToken), ua...)...), http.StatusNoContent)

		// A wrong password for an unknown account records nothing anywhere.
		apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]any{"email": apitest.UniqueEmail(t), "password": apitest.Password}, ua...), http.StatusUnauthorized, "invalid_credentials")

		p := a.activityPage(t, first.AuthToken, "")
		want := []string{"logout", "login.succeeded", "login.failed", "login.succeeded"}
		if got := eventTypes(p); !sameStrings(got, want) {
			t.Fatalf("events %v, want %v (newest first)", got, want)
		}
		for _, e := range p.Events {
			if e.IP == nil || *e.IP != a.IP {
				t.Errorf("%s: ip %v, want %s", e.Type, e.IP, a.IP)
			}
			if e.UserAgent == nil || *e.UserAgent != activityUA {
				t.Errorf("%s: user_agent %v, want %s", e.Type, e.UserAgent, activityUA)
			}
			if e.Type == "logout" {
				if e.Method != nil {
					t.Errorf("logout: method %q, want null", *e.Method)
				}
			} else if e.Method == nil || *e.Method != "email" {
				t.Errorf("%s: method %v, want email", e.Type, e.Method)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.At); err != nil {
				t.Errorf("%s: at %q: %v", e.Type, e.At, err)
			}
		}
		if p.NextCursor != nil {
			t.Errorf("a complete page has next_cursor %q", *p.NextCursor)
		}

		// Pagination: pages of one, newest first, the same events in all.
		var paged []string
		q := "?limit=1"
		for i := 0; i < 10; i++ {
			pg := a.activityPage(t, first.AuthToken, q)
			paged = append(paged, eventTypes(pg)...)
			if pg.NextCursor == nil {
				break
			}
			q = "?limit=1&cursor=" + url.QueryEscape(*pg.NextCursor)
		}
		if !sameStrings(paged, want) {
			t.Fatalf("paged events %v, want %v", paged, want)
		}
		for _, bad := range []struct{ q, code string }{
			{"?limit=0", "invalid_parameter"}, {"?limit=101", "invalid_parameter"}, {"?limit=x", "invalid_parameter"},
			{"?cursor=!!", "invalid_cursor"}, {"?cursor=" + url.QueryEscape("AAAA"), "invalid_cursor"},
		} {
			apitest.WantError(t, a.do(t, http.MethodGet, "/v1/users/me/activity"+bad.q, nil, apitest.Bearer(first.AuthToken)...), http.StatusBadRequest, bad.code)
		}
		apitest.WantError(t, a.do(t, http.MethodGet, "/v1/users/me/activity", nil), http.StatusUnauthorized, "unauthorized")

		// A wallet user sees its own login only, with method wallet.
		wtok := a.walletLoginUA(t)
		wp := a.activityPage(t, wtok, "")
		if got := eventTypes(wp); !sameStrings(got, []string{"login.succeeded"}) {
			t.Fatalf("wallet user's events %v, want its one login", got)
		}
		if m := wp.Events[0].Method; m == nil || *m != "wallet" {
			t.Errorf("wallet login method %v, want wallet", m)
		}
		for _, e := range wp.Events {
			for _, o := range p.Events {
				if e.ID == o.ID {
					t.Errorf("the wallet user sees the email user's event %s", e.ID)
				}
			}
		}

		// A password change is recorded, newest first, with the client.
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"current_password": apitest.Password, "password": "a-new-Password-77"}, append(apitest.Bearer(first.AuthToken), ua...)...), http.StatusOK)
		if e := a.activityPage(t, first.AuthToken, "?limit=1").Events[0]; e.Type != "password.changed" || e.IP == nil || *e.IP != a.IP || e.UserAgent == nil || *e.UserAgent != activityUA {
			t.Fatalf("newest event after a password change: %+v", e)
		}

		// Ending one session by id is session.revoked, with its id.
		other := a.EmailLogin(t, email, "a-new-Password-77").AuthToken
		rec = a.do(t, http.MethodGet, "/v1/users/me/sessions", nil, apitest.Bearer(other)...)
		apitest.WantStatus(t, rec, http.StatusOK)
		var sl struct {
			Sessions []struct {
				ID      string `json:"id"`
				Current bool   `json:"current"`
			} `json:"sessions"`
		}
		apitest.DecodeJSON(t, rec, &sl)
		var sid string
		for _, s := range sl.Sessions {
			if s.Current {
				sid = s.ID
			}
		}
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me/sessions/"+sid, nil, append(apitest.Bearer(first.AuthToken), ua...)...), http.StatusNoContent)
		if e := a.activityPage(t, first.AuthToken, "?limit=1").Events[0]; e.Type != "session.revoked" || string(e.Detail) != `{"session_id":"`+sid+`"}` {
			t.Fatalf("newest event after a revocation: %+v (detail %s)", e, e.Detail)
		}

		// logout-all is recorded; deleting the user deletes its events.
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout-all", nil, append(apitest.Bearer(wtok), ua...)...), http.StatusNoContent)
		var n int64
		if err := a.db.Table("activity_events").Where("type = ?", "logout_all").Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("logout_all rows %d (%v), want 1", n, err)
		}
		apitest.WantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me", nil, apitest.Bearer(first.AuthToken)...), http.StatusNoContent)
		if err := a.db.Table("activity_events").Where("id IN ?", []string{p.Events[0].ID, p.Events[3].ID}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("a deleted user's events left: %d (%v)", n, err)
		}
	})
}

// The retention sweep deletes the events older than the retention only.
func TestActivityRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		old := a.Signup(t, apitest.UniqueEmail(t))
		a.clock.Advance(48 * time.Hour)
		fresh := a.walletLoginUA(t)
		n, err := a.activity.DeleteBefore(t.Context(), a.clock.Now().Add(-24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteBefore: %d, %v; want 1 deleted", n, err)
		}
		if got := eventTypes(a.activityPage(t, old.AuthToken, "")); len(got) != 0 {
			t.Fatalf("events older than the retention left: %v", got)
		}
		if got := eventTypes(a.activityPage(t, fresh, "")); !sameStrings(got, []string{"login.succeeded"}) {
			t.Fatalf("recent events %v, want the login", got)
		}
	})
}

// A partner reads its own user's activity; another partner's user is 404.
func TestPartnerActivity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		mine, theirs := apitest.Bearer(a.newPartner(t)), apitest.Bearer(a.newPartner(t))
		rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "u-1"}, append(mine, "User-Agent", activityUA)...)
		apitest.WantStatus(t, rec, http.StatusOK)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "u-2"}, theirs...), http.StatusOK)

		rec = a.do(t, http.MethodGet, "/v1/partner/users/u-1/activity", nil, mine...)
		apitest.WantStatus(t, rec, http.StatusOK)
		var p activityPageJSON
		apitest.DecodeJSON(t, rec, &p)
		if got := eventTypes(p); !sameStrings(got, []string{"login.succeeded"}) {
			t.Fatalf("partner user's events %v, want its login", got)
		}
		if e := p.Events[0]; e.Method == nil || *e.Method != "partner" || e.UserAgent == nil || *e.UserAgent != activityUA || e.IP == nil || *e.IP != a.IP {
			t.Errorf("partner login event %+v, want method partner and the caller's User-Agent and IP", e)
		}
		apitest.WantError(t, a.do(t, http.MethodGet, "/v1/partner/users/u-2/activity", nil, mine...), http.StatusNotFound, "user_not_found")
		apitest.WantError(t, a.do(t, http.MethodGet, "/v1/partner/users/nobody/activity", nil, mine...), http.StatusNotFound, "user_not_found")
		apitest.WantError(t, a.do(t, http.MethodGet, "/v1/partner/users/u-1/activity?limit=0", nil, mine...), http.StatusBadRequest, "invalid_parameter")
		apitest.WantError(t, a.do(t, http.MethodGet, "/v1/partner/users/u-1/activity", nil), http.StatusUnauthorized, "partner_unauthorized")
	})
}

// A code login proving an unverified address records email.verified with
// the login, and a password reset records password.reset.
func TestActivityEmailVerifiedAndReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := apitest.UniqueEmail(t)
		a.Signup(t, email)
		a.clock.Advance(time.Second)
		a.otpLogin(t, email)
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]any{"email": email}), http.StatusAccepted)
		rec := a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]any{"email": email, "code": a.lastCode(t, email), "password": "a-new-Password-77"})
		apitest.WantStatus(t, rec, http.StatusOK)
		var reset apitest.Login
		apitest.DecodeJSON(t, rec, &reset)
		// Events of one transaction share their time, so their order
		// among themselves is not fixed: count them.
		types := eventTypes(a.activityPage(t, reset.AuthToken, ""))
		want := map[string]int{"login.succeeded": 3, "email.verified": 1, "password.reset": 1}
		have := map[string]int{}
		for _, ty := range types {
			have[ty]++
		}
		for k, n := range want {
			if have[k] != n {
				t.Fatalf("events %v: %d %s, want %d", types, have[k], k, n)
			}
		}
		if types[len(types)-1] != "login.succeeded" {
			t.Fatalf("events %v: the oldest is not the signup's login", types)
		}
	})
}

// Linking, making primary and unlinking a wallet are recorded with the
// address and the client.
func TestActivityWallets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		acc := a.Signup(t, apitest.UniqueEmail(t))
		ua := append(apitest.Bearer(acc.AuthToken), "User-Agent", activityUA)
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		addr := crypto.PubkeyToAddress(k.PublicKey).Hex()
		rec := a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+addr, nil)
		apitest.WantStatus(t, rec, http.StatusOK)
		var ch struct{ Message string }
		apitest.DecodeJSON(t, rec, &ch)
		sig, err := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), k)
		if err != nil {
			t.Fatal(err)
		}
		sig[64] += 27
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/users/me/wallets", map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}, ua...), http.StatusOK)
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodPut, "/v1/users/me/wallets/"+addr+"/primary", nil, ua...), http.StatusOK)
		a.clock.Advance(time.Second)
		apitest.WantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me/wallets/"+addr, nil, ua...), http.StatusOK)

		p := a.activityPage(t, acc.AuthToken, "")
		want := []string{"wallet.unlinked", "wallet.primary_changed", "wallet.linked", "login.succeeded"}
		if got := eventTypes(p); !sameStrings(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		for _, e := range p.Events[:3] {
			var d struct{ Address string }
			if err := json.Unmarshal(e.Detail, &d); err != nil || d.Address != addr {
				t.Errorf("%s: detail %s, want the address %s", e.Type, e.Detail, addr)
			}
			if e.IP == nil || *e.IP != a.IP || e.UserAgent == nil || *e.UserAgent != activityUA || e.Method != nil {
				t.Errorf("%s: %+v, want the client and no method", e.Type, e)
			}
		}
	})
}

// Setting a referrer is recorded with the client.
func TestActivityReferrerSet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		ref := a.Signup(t, apitest.UniqueEmail(t))
		acc := a.Signup(t, apitest.UniqueEmail(t))
		a.clock.Advance(time.Second)
		rec := a.do(t, http.MethodPost, "/v1/users/me/referrer", map[string]any{"referral_code": ref.User.ReferralCode}, append(apitest.Bearer(acc.AuthToken), "User-Agent", activityUA)...)
		apitest.WantStatus(t, rec, http.StatusOK)
		p := a.activityPage(t, acc.AuthToken, "")
		if got := eventTypes(p); !sameStrings(got, []string{"referrer.set", "login.succeeded"}) {
			t.Fatalf("events %v, want referrer.set then the signup's login", got)
		}
		if e := p.Events[0]; e.IP == nil || *e.IP != a.IP || e.UserAgent == nil || *e.UserAgent != activityUA {
			t.Errorf("referrer.set %+v, want the client", e)
		}
		if got := eventTypes(a.activityPage(t, ref.AuthToken, "")); !sameStrings(got, []string{"login.succeeded"}) {
			t.Errorf("the referrer's events %v, want its login only", got)
		}
	})
}
