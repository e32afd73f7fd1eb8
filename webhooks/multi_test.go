package webhooks_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/webhooks"
)

// Two instances (two pools on one PostgreSQL schema, a worker each) deliver
// every event exactly once per success, also when first attempts fail:
// FOR UPDATE SKIP LOCKED and the conditional claim keep them apart.
func TestTwoWorkersOnPostgresDeliverEachEventOnce(t *testing.T) {
	url := storagetest.PostgresSchemaURL(t)
	open := func() *storage.DB {
		db, err := storage.Open(context.Background(), url, storage.Options{MaxOpenConns: 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	db1, db2 := open(), open()
	if err := db1.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, db1)

	var mu sync.Mutex
	attempts, successes := map[string]int{}, map[string]int{}
	rc := newReceiver(t)
	rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		attempts[id]++
		fail := attempts[id] == 1 && len(attempts)%3 == 0 // every third event fails once
		if !fail {
			successes[id]++
		}
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return true
	}
	p := e.partner("Acme")
	e.register(p, rc.URL, "user.created")
	const n = 40
	for i := range n {
		e.login(p, fmt.Sprintf("ext-%d", i))
	}
	o2 := webhooks.NewOutbox(db2, users.NewStore(db2, e.clock.Now, nil), e.keys, e.clock.Now, true)
	opt := webhooks.WorkerOptions{AllowPrivate: true, Concurrency: 8, PerEndpoint: 4}
	workers := []*webhooks.Worker{
		webhooks.NewWorker(e.outbox, nil, nil, opt),
		webhooks.NewWorker(o2, nil, nil, opt),
	}
	for round := 0; round < 100; round++ {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					if _, err := w.RunOnce(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		var pending int64
		if err := db1.Model(&webhooks.Delivery{}).Where("status = ?", webhooks.StatusPending).Count(&pending).Error; err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		e.clock.Advance(5 * time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(successes) != n {
		t.Fatalf("%d events delivered, want %d", len(successes), n)
	}
	retried := 0
	for id, k := range successes {
		if k != 1 {
			t.Errorf("event %s delivered %d times", id, k)
		}
		if attempts[id] > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no event failed first: the retry path was not exercised")
	}
}
