package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// burstScenario is a launch-day arrival of new users: operation i signs in
// key i (challenge, sign, login), so no key is used twice and, on a
// database that has not seen these keys, every sign-in creates its user.
// The run stops after -keys sign-ins (attempted: a failed one is not
// retried and its key is not used again), or -n, or -duration. The keys
// are generated before the measured part; -seed makes them reproducible
// (a second burst with the same seed signs in returning users, counted as
// such).
type burstScenario struct {
	cl        *client
	keys      []benchKey
	created   atomic.Int64
	returning atomic.Int64
}

func newBurstScenario(cl *client, o options) (*burstScenario, error) {
	if o.warmup > 0 {
		// A warm-up would sign in the first keys, and the measured part
		// would sign them in again as returning users.
		return nil, errors.New("-warmup: the burst scenario signs every key in once; run a warm-up with another scenario")
	}
	t0 := time.Now()
	keys, err := generateKeys(o.keys, o.seed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "generated %d keys in %s\n", len(keys), time.Since(t0).Round(time.Millisecond))
	return &burstScenario{cl: cl, keys: keys}, nil
}

// limit is the number of operations the run may start: one per key.
func (b *burstScenario) limit() int64 { return int64(len(b.keys)) }

func (b *burstScenario) do(ctx context.Context, _ int, i int64) (int, bool) {
	if i >= int64(len(b.keys)) { // drive stops at limit(); never wrap around
		return 0, false
	}
	s, lr, err := walletLogin(ctx, b.cl, b.keys[i])
	if err != nil || lr == nil {
		return s, false
	}
	if lr.Created {
		b.created.Add(1)
	} else {
		b.returning.Add(1)
	}
	return s, true
}

func (b *burstScenario) extra() map[string]int64 {
	return map[string]int64{"created": b.created.Load(), "returning": b.returning.Load(), "http_requests_per_op": 2}
}
