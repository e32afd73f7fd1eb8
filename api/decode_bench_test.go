package api

import (
	"strings"
	"testing"
)

// BenchmarkDecode measures what the text check adds to decoding a body:
// checkJSONText alone against the whole of Decode, for a sign-up body
// without and with \u escapes, and for a 60 KiB one.
func BenchmarkDecode(b *testing.B) {
	type body struct {
		Email, Password, Username, Language, ReferralCode string
	}
	bodies := map[string]string{
		"signup":         `{"email":"alice@example.com","password":"kiwi-Lantern-42-orbit","username":"alice","language":"en","referral_code":"ABCD2345"}`,
		"signup-escapes": `{"email":"alice@example.com","password":"\u00c4rger-\ud83d\ude00-kiwi","username":"alice","language":"en","referral_code":"ABCD2345"}`,
		"60KiB-escapes":  `{"email":"` + strings.Repeat(`\u00e4x`, 60<<10/7) + `"}`,
	}
	for name, in := range bodies {
		raw := []byte(in)
		b.Run(name+"/check", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := checkJSONText(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var v body
				if err := Decode(raw, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
