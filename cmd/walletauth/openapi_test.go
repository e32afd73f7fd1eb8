package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/api/apitest"
)

// contractRoutesNotYetServed are operations of the contract (v1.1) that the
// OpenAPI document describes but this router does not serve yet: they are
// built on other branches. The list must shrink to empty; the route test
// fails for an entry the router serves (delete it then).
var contractRoutesNotYetServed = []string{}

// loadOpenAPI loads the document as served (the JSON made from
// api/openapi.yaml) and validates it as OpenAPI.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	b, err := api.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIDocumentMatchesRouter: every route of the router is in the
// document, and every operation of the document is served (or listed in
// contractRoutesNotYetServed).
func TestOpenAPIDocumentMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	a := newTestApp(t, withEnv("DEMO_PAGE", "true"))
	served := map[string]bool{}
	for _, r := range a.router.Routes() {
		op := r.Method + " " + ginParam.ReplaceAllString(r.Path, "{$1}")
		served[op] = true
		if r.Method == http.MethodHead && documented["GET "+strings.TrimPrefix(op, "HEAD ")] {
			continue // every GET answers HEAD (the contract's conventions)
		}
		if !documented[op] {
			t.Errorf("the router serves %s; api/openapi.yaml does not describe it", op)
		}
	}
	pending := map[string]bool{}
	for _, op := range contractRoutesNotYetServed {
		pending[op] = true
		if served[op] {
			t.Errorf("%s is served now: delete it from contractRoutesNotYetServed", op)
		}
		if !documented[op] {
			t.Errorf("contractRoutesNotYetServed lists %s, which the document does not describe", op)
		}
	}
	for op := range documented {
		if !served[op] && !pending[op] {
			t.Errorf("api/openapi.yaml describes %s; the router does not serve it", op)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json is the document as JSON.
func TestOpenAPIServed(t *testing.T) {
	a := newTestApp(t)
	rec := a.do(t, http.MethodGet, "/openapi.json", nil)
	apitest.WantStatus(t, rec, http.StatusOK)
	want, err := api.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Error("GET /openapi.json is not the document")
	}
	var v struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	apitest.DecodeJSON(t, rec, &v)
	if v.OpenAPI != "3.1.0" || v.Paths["/v1/auth/wallet/login"] == nil {
		t.Errorf("openapi %q, %d paths", v.OpenAPI, len(v.Paths))
	}
	if rec := a.do(t, http.MethodGet, "/openapi.json", nil, "If-None-Match", rec.Header().Get("ETag")); rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", rec.Code)
	}
}

// openAPIChecker validates responses of the real router against the
// document.
type openAPIChecker struct {
	doc    *openapi3.T
	router routers.Router
}

func newOpenAPIChecker(t testing.TB) *openAPIChecker {
	t.Helper()
	doc := loadOpenAPI(t)
	doc.Servers = nil // match requests to any host (httptest's example.com)
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &openAPIChecker{doc: doc, router: r}
}

// do sends the request through a's router and fails the test unless the
// response (status, headers, body) is one the document allows.
func (c *openAPIChecker) do(t testing.TB, a *testApp, method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := a.newRequest(t, method, path, body, headers...)
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec := httptest.NewRecorder()
	a.router.ServeHTTP(rec, req)

	vreq := httptest.NewRequest(method, path, bytes.NewReader(reqBody))
	vreq.Header = req.Header.Clone()
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		t.Fatalf("%s %s: not in the OpenAPI document: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true},
	}
	if rec.Code < 400 { // a request the service accepted must be one the document allows
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: the request does not match the document: %v", method, path, err)
		}
	}
	opts := *in.Options
	// kin-openapi decodes JSON and text/plain bodies; the SDK's JavaScript
	// is checked for its status and content type only.
	opts.ExcludeResponseBody = !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") &&
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain")
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Options: &opts}
	out.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s → %d: the response does not match the document: %v\n%s", method, path, rec.Code, err, rec.Body)
	}
	return rec
}

// user checks a JSON value against the document's User schema.
func (c *openAPIChecker) user(t testing.TB, raw json.RawMessage) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if err := c.doc.Components.Schemas["User"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("user %s does not match the User schema: %v", raw, err)
	}
}

// TestOpenAPIResponsesMatchDocument validates real answers of the handlers
// (successes and errors, login answers with their access tokens included)
// against the document's schemas.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	c := newOpenAPIChecker(t)
	a := newTestApp(t)

	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/sdk/walletauth.js", "/openapi.json", "/v1/auth/wallet/nonce"} {
		c.do(t, a, http.MethodGet, p, nil)
	}
	key := benchProfKeysT(t, 1)[0]
	c.do(t, a, http.MethodGet, "/v1/auth/wallet/challenge?address="+key.addr+"&chain_id=1", nil)
	c.do(t, a, http.MethodPost, "/v1/auth/wallet/challenge", map[string]any{"address": key.addr})
	c.do(t, a, http.MethodGet, "/v1/auth/wallet/challenge?address=0xnope", nil)
	c.do(t, a, http.MethodGet, "/v1/auth/wallet/challenge?address="+key.addr+"&chain_id=999", nil)
	walletToken, _ := benchProfLoginT(t, a.router, key)
	c.do(t, a, http.MethodGet, "/v1/users/me", nil, apitest.Bearer(walletToken)...)
	c.do(t, a, http.MethodPut, "/v1/users/me/wallets/"+key.addr+"/primary", nil, apitest.Bearer(walletToken)...)
	c.do(t, a, http.MethodDelete, "/v1/users/me/wallets/"+key.addr, nil, apitest.Bearer(walletToken)...)
	c.do(t, a, http.MethodPost, "/v1/auth/wallet/login", map[string]any{"message": "not a message", "signature": "0x00"})

	var login struct {
		AuthToken   string          `json:"auth_token"`
		AccessToken string          `json:"access_token"`
		User        json.RawMessage `json:"user"`
	}
	rec := c.do(t, a, http.MethodPost, "/v1/auth/email/signup", map[string]any{"email": apitest.UniqueEmail(t), "password": apitest.Password})
	apitest.WantStatus(t, rec, http.StatusCreated)
	apitest.DecodeJSON(t, rec, &login)
	c.user(t, login.User)
	tok := apitest.Bearer(login.AuthToken)
	c.do(t, a, http.MethodGet, "/v1/users/me", nil, apitest.Bearer(login.AccessToken)...)
	c.do(t, a, http.MethodPost, "/v1/auth/token", nil, tok...)
	c.do(t, a, http.MethodPost, "/v1/auth/token", nil, apitest.Bearer(login.AccessToken)...)
	c.do(t, a, http.MethodGet, "/v1/users/me/sessions", nil, tok...)
	c.do(t, a, http.MethodDelete, "/v1/users/me/sessions/0000", nil, tok...)
	c.do(t, a, http.MethodGet, "/.well-known/jwks.json", nil)
	c.do(t, a, http.MethodGet, "/.well-known/openid-configuration", nil)
	c.do(t, a, http.MethodPost, "/v1/auth/email/otp", map[string]any{"email": apitest.UniqueEmail(t)})
	c.do(t, a, http.MethodPost, "/v1/auth/email/otp/verify", map[string]any{"email": apitest.UniqueEmail(t), "code": "000000"})
	c.do(t, a, http.MethodPost, "/v1/auth/password/forgot", map[string]any{"email": apitest.UniqueEmail(t)})
	c.do(t, a, http.MethodPost, "/v1/users/me/email/verification", map[string]any{}, tok...)
	c.do(t, a, http.MethodGet, "/v1/users/me", nil, tok...)
	c.do(t, a, http.MethodGet, "/v1/users/me", nil, "Authorization", "Bearer wat_unknown")
	c.do(t, a, http.MethodPatch, "/v1/users/me", map[string]any{"language": "de"}, tok...)
	c.do(t, a, http.MethodPatch, "/v1/users/me", map[string]any{"username": "!"}, tok...)
	c.do(t, a, http.MethodGet, "/v1/users/me/referrals?limit=10", nil, tok...)
	c.do(t, a, http.MethodGet, "/v1/users/me/activity?limit=1", nil, tok...)
	c.do(t, a, http.MethodGet, "/v1/users/me/activity?limit=0", nil, tok...)
	c.do(t, a, http.MethodPost, "/v1/users/me/referrer", map[string]any{"referral_code": "nosuchcode"}, tok...)
	c.do(t, a, http.MethodPost, "/v1/auth/email/signup", map[string]any{"email": "not-an-email", "password": apitest.Password})
	c.do(t, a, http.MethodPost, "/v1/auth/email/login", map[string]any{"email": apitest.UniqueEmail(t), "password": apitest.Password})
	c.do(t, a, http.MethodPost, "/v1/auth/code", map[string]any{"login_code": "nope"})
	c.do(t, a, http.MethodDelete, "/v1/users/me/wallets/"+key.addr, nil, tok...)

	secret := a.newPartner(t)
	ptok := apitest.Bearer(secret)
	rec = c.do(t, a, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": 42}, ptok...)
	apitest.WantStatus(t, rec, http.StatusOK)
	var pl struct {
		User json.RawMessage `json:"user"`
	}
	apitest.DecodeJSON(t, rec, &pl)
	c.user(t, pl.User)
	c.do(t, a, http.MethodGet, "/v1/partner/users/42", nil, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users/nobody", nil, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users/42/activity", nil, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users/nobody/activity", nil, ptok...)
	c.do(t, a, http.MethodPost, "/v1/partner/users/42/points", map[string]any{"amount": 5, "reason": "test", "idempotency_key": "k1"}, ptok...)
	c.do(t, a, http.MethodPost, "/v1/partner/users/42/points", map[string]any{"amount": -50, "reason": "test", "idempotency_key": "k2"}, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users/42/ranking?n=2", nil, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users?limit=5", nil, ptok...)
	c.do(t, a, http.MethodPost, "/v1/partner/tokens/verify", map[string]any{"token": login.AuthToken}, ptok...)
	c.do(t, a, http.MethodPost, "/v1/partner/tokens/verify", map[string]any{"token": "wat_nope"}, ptok...)
	c.do(t, a, http.MethodGet, "/v1/partner/users/42", nil, "Authorization", "Bearer pts_wrong")
	c.do(t, a, http.MethodDelete, "/v1/partner/users", map[string]any{"external_ids": []any{42}}, ptok...)

	c.do(t, a, http.MethodPost, "/v1/auth/logout", nil, tok...)
}
