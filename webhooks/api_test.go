package webhooks_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/webhooks"
)

func TestRegisterListDelete(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p, other := e.partner("Acme"), e.partner("Other")
		m := e.want(e.do("POST", "/v1/partner/webhooks", p.Secret, map[string]any{
			"url": "https://hooks.acme.example/walletauth", "events": []string{"user.created", "points.changed", "user.created"},
		}), http.StatusCreated)
		id, secret := m["id"].(string), m["secret"].(string)
		if m["url"] != "https://hooks.acme.example/walletauth" || m["created_at"] == "" || id == "" {
			t.Fatalf("created %v", m)
		}
		if evs := m["events"].([]any); len(evs) != 2 || evs[0] != "user.created" || evs[1] != "points.changed" {
			t.Fatalf("events %v, want [user.created points.changed] (deduplicated)", evs)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) < 24 {
			t.Fatalf("secret %q: want whsec_ + base64 of at least 24 bytes", secret)
		}
		// Stored sealed: the row holds neither the secret nor its key.
		var row webhooks.Endpoint
		if err := db.Where("id = ?", id).Take(&row).Error; err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(row.Secret, []byte(secret)) || bytes.Contains(row.Secret, key) {
			t.Fatal("the endpoint's secret is stored in the clear")
		}

		list := e.want(e.do("GET", "/v1/partner/webhooks", p.Secret, nil), http.StatusOK)["webhooks"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != id {
			t.Fatalf("list %v", list)
		}
		if _, ok := list[0].(map[string]any)["secret"]; ok {
			t.Fatal("the list shows the secret: it is shown once")
		}
		if l := e.want(e.do("GET", "/v1/partner/webhooks", other.Secret, nil), http.StatusOK)["webhooks"].([]any); len(l) != 0 {
			t.Fatalf("another partner sees %v", l)
		}
		if r := e.do("DELETE", "/v1/partner/webhooks/"+id, other.Secret, nil); r.Code != 404 || r.errorCode(t) != "webhook_not_found" {
			t.Fatalf("another partner's delete: %d %s", r.Code, r.Body)
		}
		e.want(e.do("DELETE", "/v1/partner/webhooks/"+id, p.Secret, nil), http.StatusNoContent)
		if r := e.do("DELETE", "/v1/partner/webhooks/"+id, p.Secret, nil); r.Code != 404 || r.errorCode(t) != "webhook_not_found" {
			t.Fatalf("second delete: %d %s", r.Code, r.Body)
		}
		if r := e.do("GET", "/v1/partner/webhooks", "", nil); r.Code != 401 {
			t.Fatalf("without credentials: %d", r.Code)
		}
	})
}

func TestRegisterRefusesBadURLsAndEvents(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		strict := webhooks.NewOutbox(db, e.users, e.keys, e.clock.Now, false)
		p := e.partner("Acme")
		for _, u := range []any{
			"ftp://hooks.example/x", "hooks.example/x", "", "javascript:alert(1)", "http://", 42, nil,
			"http://user:pw@hooks.example/x", "https://hooks.example/x#frag",
		} {
			if r := e.do("POST", "/v1/partner/webhooks", p.Secret, map[string]any{"url": u, "events": []string{"user.created"}}); r.Code != 400 || r.errorCode(t) != "invalid_url" {
				t.Errorf("url %v: %d %s, want 400 invalid_url", u, r.Code, r.Body)
			}
		}
		for _, u := range []string{
			"http://127.0.0.1/x", "http://127.1.2.3:8080/x", "http://localhost/x", "http://api.localhost/x", "http://[::1]/x",
			"http://10.0.0.1/x", "http://172.16.5.4/x", "http://192.168.1.1/x", "http://169.254.169.254/latest/meta-data",
			"http://0.0.0.0/x", "http://[::]/x", "http://100.64.0.1/x", "http://[fd00::1]/x", "http://[fe80::1]/x",
			"http://[::ffff:127.0.0.1]/x", "http://[64:ff9b::a9fe:a9fe]/x",
		} {
			if _, err := strict.Create(t.Context(), p.ID, u, []string{"user.created"}); err == nil || !strings.Contains(err.Error(), "invalid_url") {
				t.Errorf("url %s: %v, want invalid_url", u, err)
			}
		}
		if _, err := strict.Create(t.Context(), p.ID, "https://93.184.215.14/hook", []string{"user.created"}); err != nil {
			t.Errorf("a public address: %v", err)
		}
		// The API's outbox allows private targets (WALLETAUTH_WEBHOOK_ALLOW_PRIVATE=true).
		e.want(e.do("POST", "/v1/partner/webhooks", p.Secret, map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"user.created"}}), http.StatusCreated)

		for _, evs := range []any{nil, []string{}, []string{"user.nope"}, "user.created", []any{1}, []string{"user.created", ""}} {
			body := map[string]any{"url": "https://hooks.example/x"}
			if evs != nil {
				body["events"] = evs
			}
			if r := e.do("POST", "/v1/partner/webhooks", p.Secret, body); r.Code != 400 || r.errorCode(t) != "invalid_events" {
				t.Errorf("events %v: %d %s, want 400 invalid_events", evs, r.Code, r.Body)
			}
		}
	})
}

func TestRegisterIsBoundedPerPartner(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p, other := e.partner("Acme"), e.partner("Other")
		for range webhooks.MaxEndpoints {
			e.register(p, "https://hooks.acme.example/x", "user.created")
		}
		r := e.do("POST", "/v1/partner/webhooks", p.Secret, map[string]any{"url": "https://hooks.acme.example/y", "events": []string{"user.created"}})
		if r.Code != http.StatusBadRequest || r.errorCode(t) != "invalid_parameter" {
			t.Fatalf("webhook %d: %d %s", webhooks.MaxEndpoints+1, r.Code, r.Body)
		}
		e.register(other, "https://hooks.other.example/x", "user.created") // another partner's bound is its own
	})
}
