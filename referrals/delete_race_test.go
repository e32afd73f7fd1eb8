package referrals_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

// TestDeleteRacingSetReferrer deletes users while they set their referrer:
// the referrer's count must match whichever won.
func TestDeleteRacingSetReferrer(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ref := f.mustUser(t, "referrer", "")
		var wg sync.WaitGroup
		for i := range 40 {
			u := f.mustUser(t, fmt.Sprintf("victim_%02d", i), "")
			wg.Go(func() { _, _ = f.svc.SetReferrer(ctx, u.ID, ref.ReferralCode) })
			wg.Go(func() { _ = f.users.Delete(ctx, u.ID) })
		}
		wg.Wait()
		checkCounts(t, db)
	})
}
