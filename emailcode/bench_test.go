package emailcode_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/walletauth/walletauth/emailcode"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

// The store work of a code request (Issue) and a code check (Consume with
// the right code), on the in-process store and on Redis.
func BenchmarkCodes(b *testing.B) {
	stores := map[string]func(b *testing.B) kv.Store{
		"memory": func(b *testing.B) kv.Store { return kv.NewMemory(time.Now) },
		"redis":  func(b *testing.B) kv.Store { return kvtest.Redis(b) },
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name+"/issue", func(b *testing.B) {
			c := emailcode.New(stores[name](b), time.Now, 10*time.Minute)
			for i := 0; b.Loop(); i++ {
				if _, _, err := c.Issue(ctx, emailcode.Login, "bench"+strconv.Itoa(i%1000), "a@example.com"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/consume", func(b *testing.B) {
			c := emailcode.New(stores[name](b), time.Now, 10*time.Minute)
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				subject := "bench" + strconv.Itoa(i)
				code, _, err := c.Issue(ctx, emailcode.Login, subject, "a@example.com")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := c.Consume(ctx, emailcode.Login, subject, code); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
