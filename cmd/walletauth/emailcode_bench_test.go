package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// benchCodeApp is the wired service with the code limits off (the
// benchmark asks for many codes from one IP).
func benchCodeApp(b *testing.B) *testApp {
	env := []string{"EMAIL_SEND_PER_ADDRESS", "0", "EMAIL_SEND_PER_IP", "0"}
	if strings.Contains(b.Name(), "postgres") {
		env = append(env, postgresEnv(b)...)
	}
	return newTestApp(b, withEnv(env...))
}

// BenchmarkEmailCodeRequest is POST /v1/auth/email/otp through the router:
// rate-limit checks, the account lookup, the code written to the store,
// the mail rendered and queued in a transaction (mail off: nothing sent).
func BenchmarkEmailCodeRequest(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			a := benchCodeApp(b)
			for i := 0; b.Loop(); i++ {
				rec := a.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": "bench" + strconv.Itoa(i) + "@example.com"})
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
			a := benchCodeApp(b)
			email := "returning@example.com"
			a.otpLoginB(b, email) // the account exists
			for b.Loop() {
				b.StopTimer()
				rec := a.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email})
				if rec.Code != http.StatusAccepted {
					b.Fatal(rec.Code, rec.Body)
				}
				code := a.lastCode(b, email)
				b.StartTimer()
				rec = a.do(b, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code})
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
	}
}

func (a *testApp) otpLoginB(b *testing.B, email string) {
	rec := a.do(b, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email})
	if rec.Code != http.StatusAccepted {
		b.Fatal(rec.Code)
	}
	rec = a.do(b, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": a.lastCode(b, email)})
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
				a := benchCodeApp(b)
				email := "forgot@example.com"
				if known {
					a.otpLoginB(b, email)
				}
				for b.Loop() {
					rec := a.do(b, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email})
					if rec.Code != http.StatusAccepted {
						b.Fatal(rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
