package auth_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/kv/kvtest"
	"github.com/walletauth/walletauth/storage/storagetest"
)

// benchCodeEnv is the email flows with the code limits off (the benchmark
// asks for many codes from one IP), on SQLite or, for a benchmark named
// postgres, on PostgreSQL and Redis.
func benchCodeEnv(b *testing.B) *env {
	opts := []envOption{withCodeLimits(func(l *auth.CodeLimits) { *l = auth.CodeLimits{} })}
	if strings.Contains(b.Name(), "postgres") {
		opts = append(opts, withDB(storagetest.OpenPostgres(b)), withStore(kvtest.Redis(b)))
	}
	return newEmailEnv(b, opts...)
}

// BenchmarkEmailCodeRequest is POST /v1/auth/email/otp through the router:
// rate-limit checks, the account lookup, the code written to the store,
// the mail rendered and queued in a transaction (mail off: nothing sent).
func BenchmarkEmailCodeRequest(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := benchCodeEnv(b)
			for i := 0; b.Loop(); i++ {
				rec := e.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": "bench" + strconv.Itoa(i) + "@example.com"}, "")
				if rec.Code != http.StatusAccepted {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkEmailCodeVerify is POST /v1/auth/email/otp/verify through the
// router for a returning account: the code consumed, the email marked
// verified and a session issued in one transaction, the login answer.
func BenchmarkEmailCodeVerify(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := benchCodeEnv(b)
			email := "returning@example.com"
			e.otpLoginB(b, email) // the account exists
			for b.Loop() {
				b.StopTimer()
				rec := e.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, "")
				if rec.Code != http.StatusAccepted {
					b.Fatal(rec.Code, rec.Body)
				}
				code := e.lastCode(b, email)
				b.StartTimer()
				rec = e.do(b, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}, "")
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
	}
}

func (e *env) otpLoginB(b *testing.B, email string) {
	rec := e.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, "")
	if rec.Code != http.StatusAccepted {
		b.Fatal(rec.Code)
	}
	rec = e.do(b, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": e.lastCode(b, email)}, "")
	if rec.Code != http.StatusOK {
		b.Fatal(rec.Code, rec.Body)
	}
}

// BenchmarkPasswordForgot compares POST /v1/auth/password/forgot for an
// address with an account and one without: the answers must take about
// the same time (no enumeration by timing).
func BenchmarkPasswordForgot(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, known := range []bool{true, false} {
			b.Run(backend+"/"+map[bool]string{true: "known", false: "unknown"}[known], func(b *testing.B) {
				e := benchCodeEnv(b)
				email := "forgot@example.com"
				if known {
					e.otpLoginB(b, email)
				}
				for b.Loop() {
					rec := e.do(b, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "")
					if rec.Code != http.StatusAccepted {
						b.Fatal(rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
