package webhooks_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Example_verify is the partner guide's Go receiver (docs/partners.md, "Webhooks"),
// kept here so that it compiles.
func Example_verify() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("WALLETAUTH_WEBHOOK_SECRET")) // "whsec_…"
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/walletauth-events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil { // signature and a 5-minute timestamp window
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var event struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &event)
		// handle event, deduplicating on r.Header.Get("webhook-id")
		w.WriteHeader(http.StatusNoContent)
	})
}
