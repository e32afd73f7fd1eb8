// Package every runs housekeeping on a period: the sweepers of expired
// sessions, old activity events and unsent mail.
package every

import (
	"context"
	"time"
)

// Period calls fn every period until ctx ends (the first call one period
// from now), and returns when ctx ends. fn is given ctx.
func Period(ctx context.Context, period time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
