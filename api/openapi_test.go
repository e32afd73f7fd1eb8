package api_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api"
)

// The API reference (docs/api.md) names exactly the OpenAPI document's
// operations, each with the document's summary.
func TestAPIReferenceMatchesOpenAPI(t *testing.T) {
	b, err := api.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	inDoc := map[string]string{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				Summary string `json:"summary"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				continue // not an operation (parameters, …)
			}
			inDoc[strings.ToUpper(method)+" "+path] = op.Summary
		}
	}
	heading := regexp.MustCompile("(?m)^### `([A-Z]+ [^`]+)`\n\n(.*)$")
	seen := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(md), -1) {
		seen[m[1]] = true
		summary, ok := inDoc[m[1]]
		if !ok {
			t.Errorf("docs/api.md names %s; api/openapi.yaml has no such operation", m[1])
		} else if strings.TrimSpace(m[2]) != strings.TrimSpace(summary) {
			t.Errorf("docs/api.md: %s says %q; the document says %q", m[1], m[2], summary)
		}
	}
	for op := range inDoc {
		if !seen[op] {
			t.Errorf("docs/api.md does not name %s (in api/openapi.yaml)", op)
		}
	}
	if len(inDoc) < 40 {
		t.Errorf("the document has %d operations; the contract has more", len(inDoc))
	}
}
