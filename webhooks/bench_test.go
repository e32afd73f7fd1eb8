package webhooks_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// BenchmarkProfileUpdate is the cost the outbox adds to a change of a
// user: none (no hook), the hook's lookup for a user no webhook listens to,
// and the lookup plus the event row for a partner user with one endpoint.
func BenchmarkProfileUpdate(b *testing.B) {
	for _, mode := range []string{"no-hook", "hook-no-endpoint", "hook-one-endpoint"} {
		b.Run(mode, func(b *testing.B) {
			db := storagetest.OpenSQLite(b)
			e := newEnv(b, db)
			p := e.partner("Acme")
			if mode == "hook-one-endpoint" {
				e.register(p, "https://hooks.acme.example/x", "user.updated")
			}
			e.login(p, "ext-1")
			var uid string
			if err := db.Raw(`SELECT user_id FROM partner_identities`).Row().Scan(&uid); err != nil {
				b.Fatal(err)
			}
			if mode == "no-hook" {
				e.users.SetTxHook(nil)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				lang := fmt.Sprintf("en-%c%c", 'A'+i%26, 'A'+(i/26)%26)
				if _, err := e.users.Update(ctx, uid, users.Patch{Language: &lang}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
