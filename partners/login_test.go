package partners_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

const loginPath = "/v1/partner/users/login"

func userOf(tb testing.TB, m map[string]any) map[string]any {
	tb.Helper()
	u, ok := m["user"].(map[string]any)
	if !ok {
		tb.Fatalf("no user in %v", m)
	}
	return u
}

func TestExternalIDLogin(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		ctx := context.Background()

		t.Run("first login registers, later ones do not", func(t *testing.T) {
			first := e.login(a, map[string]any{"external_id": "u-1"})
			if first["registered"] != true {
				t.Fatalf("first login: %v", first)
			}
			for _, f := range []string{"auth_token", "login_code", "login_code_expires_at"} {
				if s, _ := first[f].(string); s == "" {
					t.Fatalf("%s missing: %v", f, first)
				}
			}
			exp, err := time.Parse(time.RFC3339, first["login_code_expires_at"].(string))
			if err != nil || !exp.Equal(start.Add(5*time.Minute)) {
				t.Fatalf("login_code_expires_at %v (%v), want %v", first["login_code_expires_at"], err, start.Add(5*time.Minute))
			}
			second := e.login(a, map[string]any{"external_id": "u-1"})
			if second["registered"] != false || userOf(t, second)["id"] != userOf(t, first)["id"] {
				t.Fatalf("second login: %v", second)
			}
			if second["auth_token"] == first["auth_token"] || second["login_code"] == first["login_code"] {
				t.Fatal("a later login must issue a new token and code")
			}
			// The token is a real session.
			sess, err := e.sessions.Check(ctx, first["auth_token"].(string))
			if err != nil || sess.UserID != userOf(t, first)["id"] {
				t.Fatalf("token check: %v %v", sess, err)
			}
		})

		t.Run("a number is its decimal string", func(t *testing.T) {
			n := e.login(a, []byte(`{"external_id": 12345}`))
			if n["registered"] != true {
				t.Fatalf("%v", n)
			}
			s := e.login(a, map[string]any{"external_id": "12345"})
			if s["registered"] != false || userOf(t, s)["id"] != userOf(t, n)["id"] {
				t.Fatalf("string after number: %v", s)
			}
			big := e.login(a, []byte(`{"external_id": 123456789012345678901234567890}`))
			again := e.login(a, map[string]any{"external_id": "123456789012345678901234567890"})
			if userOf(t, big)["id"] != userOf(t, again)["id"] {
				t.Fatal("a big integer must keep all its digits")
			}
		})

		t.Run("bad external_id", func(t *testing.T) {
			long := make([]byte, partners.MaxExternalIDLength+1)
			for i := range long {
				long[i] = 'x'
			}
			for body, code := range map[string]string{
				`{}`:                                                "external_id_missing",
				`{"external_id": null}`:                             "external_id_missing",
				`{"external_id": ""}`:                               "external_id_missing",
				`{"external_id": "  "}`:                             "external_id_missing",
				`{"external_id": true}`:                             "invalid_json",
				`{"external_id": {"a": 1}}`:                         "invalid_json",
				`{"external_id": [1]}`:                              "invalid_json",
				`{"external_id": 1.5}`:                              "invalid_json",
				`{"external_id": 1e3}`:                              "invalid_json",
				`{"external_id": "a\u0000b"}`:                       "invalid_json",
				`{"external_id": "a\u0001b"}`:                       "invalid_external_id",
				`{"external_id": "` + string(long) + `"}`:           "invalid_external_id",
				`{"external_id": "x", "email": "not-an-email"}`:     "invalid_email",
				`{"external_id": "x", "first_name": 7}`:             "invalid_json",
				`{"external_id": "x", "referral_code": "NOPE2345"}`: "invalid_referral_code",
				`not json`: "invalid_json",
			} {
				r := e.withSecret(a, http.MethodPost, loginPath, body)
				if r.Code != 400 || r.errorCode(t) != code {
					t.Errorf("%s: got %d %s, want 400 %s", body, r.Code, r.Body, code)
				}
			}
			// None of those created a user.
			if r := e.withSecret(a, http.MethodGet, "/v1/partner/users/x", nil); r.Code != 404 {
				t.Fatalf("a refused login created user x: %d %s", r.Code, r.Body)
			}
		})

		t.Run("referral code applies on creation", func(t *testing.T) {
			ref := e.login(a, map[string]any{"external_id": "referrer"})
			code := userOf(t, ref)["referral_code"].(string)
			referee := e.login(a, map[string]any{"external_id": "referee", "referral_code": code})
			if userOf(t, referee)["referrer"] != userOf(t, ref)["username"] {
				t.Fatalf("referrer not set: %v", referee)
			}
			// On a later login it changes nothing, even when unknown.
			again := e.login(a, map[string]any{"external_id": "referee", "referral_code": "NOPE2345"})
			if again["registered"] != false {
				t.Fatalf("%v", again)
			}
		})

		t.Run("names and email stay on the identity", func(t *testing.T) {
			// An email account with the same address exists.
			mail := "alice@example.com"
			emailUser, err := e.users.Create(ctx, users.NewUser{Email: &mail, PasswordHash: ptr("x")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := e.login(a, map[string]any{"external_id": "alice", "first_name": "Alice", "last_name": "Liddell", "email": "Alice@Example.com"})
			u := userOf(t, r)
			if u["id"] == emailUser.ID || u["email"] != nil {
				t.Fatalf("partner email merged into or copied onto the user: %v", u)
			}
			id := identity(t, e, a.ID, "alice")
			if deref(id.FirstName) != "Alice" || deref(id.LastName) != "Liddell" || deref(id.Email) != "Alice@Example.com" {
				t.Fatalf("identity %+v", id)
			}
			// Given fields are updated, absent ones kept, empty ones cleared.
			e.login(a, map[string]any{"external_id": "alice", "first_name": "Alicia", "email": ""})
			id = identity(t, e, a.ID, "alice")
			if deref(id.FirstName) != "Alicia" || deref(id.LastName) != "Liddell" || id.Email != nil {
				t.Fatalf("identity after update %+v", id)
			}
			got, err := e.users.Get(ctx, emailUser.ID)
			if err != nil || deref(got.Email) != mail {
				t.Fatalf("the email account changed: %+v %v", got, err)
			}
		})

		t.Run("one external_id per partner", func(t *testing.T) {
			b := e.createPartner(partners.NewPartner{Name: "B"})
			ra := e.login(a, map[string]any{"external_id": "same"})
			rb := e.login(b, map[string]any{"external_id": "same"})
			if rb["registered"] != true || userOf(t, ra)["id"] == userOf(t, rb)["id"] {
				t.Fatalf("the same external_id at two partners must be two users: %v %v", ra, rb)
			}
		})
	})
}

func TestExternalIDLoginConcurrent(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		for round := 0; round < 3; round++ {
			ext := "parallel-" + randomHex(t)
			var (
				wg         sync.WaitGroup
				registered atomic.Int32
				mu         sync.Mutex
				ids        = map[string]bool{}
			)
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := e.withSecret(a, http.MethodPost, loginPath, map[string]any{"external_id": ext})
					if r.Code != 200 {
						t.Errorf("login: %d %s", r.Code, r.Body)
						return
					}
					m := r.json(t)
					if m["registered"] == true {
						registered.Add(1)
					}
					mu.Lock()
					ids[userOf(t, m)["id"].(string)] = true
					mu.Unlock()
				}()
			}
			wg.Wait()
			if registered.Load() != 1 || len(ids) != 1 {
				t.Fatalf("10 parallel first logins: %d registered, %d users; want 1 and 1", registered.Load(), len(ids))
			}
			var n int64
			if err := db.Table("users").Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != int64(round+1) {
				t.Fatalf("%d users after round %d", n, round)
			}
		}
	})
}

func TestLoginCodes(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		exchange := func(code string) response {
			return e.do(http.MethodPost, "/v1/auth/code", marshal(t, map[string]any{"login_code": code}), nil)
		}

		t.Run("single use under concurrency", func(t *testing.T) {
			r := e.login(a, map[string]any{"external_id": "coder"})
			code := r["login_code"].(string)
			var ok atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := exchange(code)
					switch {
					case res.Code == 200:
						ok.Add(1)
						m := res.json(t)
						if m["created"] != false || userOf(t, m)["id"] != userOf(t, r)["id"] || m["auth_token"] == r["auth_token"] {
							t.Errorf("exchange answer %v", m)
						}
						if _, err := e.sessions.Check(context.Background(), m["auth_token"].(string)); err != nil {
							t.Errorf("exchanged token: %v", err)
						}
					case res.Code == 401 && res.errorCode(t) == "login_code_invalid":
					default:
						t.Errorf("exchange: %d %s", res.Code, res.Body)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 1 {
				t.Fatalf("%d exchanges succeeded, want 1", ok.Load())
			}
		})

		t.Run("expiry", func(t *testing.T) {
			r := e.login(a, map[string]any{"external_id": "late"})
			e.clock.Advance(5*time.Minute - time.Second)
			wantOK(t, exchange(r["login_code"].(string)))
			r = e.login(a, map[string]any{"external_id": "late"})
			e.clock.Advance(5 * time.Minute)
			wantError(t, exchange(r["login_code"].(string)), 401, "login_code_invalid")
		})

		t.Run("unknown or malformed", func(t *testing.T) {
			wantError(t, exchange("plc_"+randomHex(t)), 401, "login_code_invalid")
			wantError(t, exchange("plc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 401, "login_code_invalid")
			wantError(t, exchange(""), 401, "login_code_invalid")
			wantError(t, e.do(http.MethodPost, "/v1/auth/code", []byte(`{"login_code": 5}`), nil), 400, "invalid_json")
		})

		t.Run("the user was deleted", func(t *testing.T) {
			r := e.login(a, map[string]any{"external_id": "gone"})
			wantOK(t, e.withSecret(a, http.MethodDelete, "/v1/partner/users", map[string]any{"external_ids": []string{"gone"}}))
			wantError(t, exchange(r["login_code"].(string)), 401, "login_code_invalid")
		})
	})
}

func identity(tb testing.TB, e *env, partnerID, ext string) partners.Identity {
	tb.Helper()
	var id partners.Identity
	if err := e.db.Where("partner_id = ? AND external_id = ?", partnerID, ext).Take(&id).Error; err != nil {
		tb.Fatalf("identity %s/%s: %v", partnerID, ext, err)
	}
	return id
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
