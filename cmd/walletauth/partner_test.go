package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// partnerCLIHelperEnv makes the test binary act as the walletauth command:
// the CLI runs in a process of its own, as an operator runs it.
const partnerCLIHelperEnv = "WALLETAUTH_TEST_PARTNER_CLI_HELPER"

// TestPartnerCLIHelperProcess is not a test: re-executed with
// partnerCLIHelperEnv set, it runs run() on the arguments after "--".
func TestPartnerCLIHelperProcess(t *testing.T) {
	if os.Getenv(partnerCLIHelperEnv) != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	if err := run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Stderr.WriteString("walletauth: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

type cliResult struct {
	stdout, stderr string
	err            error
}

// partnerCLI runs "walletauth <args>" in a subprocess with env added to
// this process's environment.
func partnerCLI(t *testing.T, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestPartnerCLIHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), partnerCLIHelperEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return cliResult{stdout: out.String(), stderr: errOut.String(), err: err}
}

func (r cliResult) must(t *testing.T) cliResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("walletauth failed: %v\nstdout: %s\nstderr: %s", r.err, r.stdout, r.stderr)
	}
	return r
}

type createdPartner struct {
	PartnerID string `json:"partner_id"`
	Secret    string `json:"secret"`
}

func decodeCreated(t *testing.T, out string) createdPartner {
	t.Helper()
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("--json output is not one line: %q", out)
	}
	var p createdPartner
	if err := json.Unmarshal([]byte(out), &p); err != nil || !strings.HasPrefix(p.PartnerID, "pt_") || !strings.HasPrefix(p.Secret, "pts_") {
		t.Fatalf("--json output %q: %v", out, err)
	}
	return p
}

// partnerAPI serves the partner API over db, as the server would.
func partnerAPI(t *testing.T, db *storage.DB, keys *partners.Keyring) http.Handler {
	t.Helper()
	store := kv.NewMemory(time.Now)
	t.Cleanup(func() { _ = store.Close() })
	us := users.NewStore(db, time.Now, nil)
	sessions := auth.NewSessions(db, time.Now, time.Hour, nil)
	svc := partners.New(partners.NewRegistry(db, keys, time.Now), us, sessions, points.NewLedger(db, us, time.Now),
		store, nil, time.Now, partners.Options{})
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(api.RequestID(), api.LimitBody())
	svc.Routes(r.Group("/v1"))
	return r
}

// partnerStatus is the status of GET /v1/partner/users with the secret, or
// with an HS256 JWT signed with it when signed is true.
func partnerStatus(t *testing.T, h http.Handler, p createdPartner, signed bool) int {
	t.Helper()
	tok := p.Secret
	if signed {
		var err error
		tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": p.PartnerID, "iat": time.Now().Unix(), "jti": rand.Text(),
			"body_sha256": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", // SHA-256 of no body
		}).SignedString([]byte(p.Secret))
		if err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/partner/users", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

func TestPartnerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI in subprocesses")
	}
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			var (
				dbURL string
				db    *storage.DB
			)
			if b.Name == "postgres" {
				db = storagetest.OpenPostgres(t) // a throwaway schema
				var schema string
				if err := db.Raw("SELECT current_schema()").Row().Scan(&schema); err != nil {
					t.Fatal(err)
				}
				dbURL = storagetest.WithSearchPath(t, storagetest.PostgresURL(t), schema)
			} else {
				dbURL = "sqlite://" + filepath.Join(t.TempDir(), "cli.db")
			}
			keyBytes := make([]byte, partners.MasterKeySize)
			if _, err := rand.Read(keyBytes); err != nil {
				t.Fatal(err)
			}
			key := base64.StdEncoding.EncodeToString(keyBytes)
			env := map[string]string{"WALLETAUTH_DATABASE_URL": dbURL, "WALLETAUTH_SECRET_KEY": key}

			acme := decodeCreated(t, partnerCLI(t, env, "partner", "create", "--name", "Acme",
				"--origin", "https://app.acme.example", "--origin", "http://localhost:3000", "--client-login", "--json").must(t).stdout)
			human := partnerCLI(t, env, "partner", "create", "--name", "Signed Co", "--signed-requests").must(t)
			var signed createdPartner
			for _, line := range strings.Split(human.stdout, "\n") {
				if v, ok := strings.CutPrefix(line, "partner_id: "); ok {
					signed.PartnerID = v
				}
				if v, ok := strings.CutPrefix(line, "secret: "); ok {
					signed.Secret = v
				}
			}
			if signed.PartnerID == "" || signed.Secret == "" || strings.Contains(human.stderr, "unencrypted") {
				t.Fatalf("create output: %q / %q", human.stdout, human.stderr)
			}

			list := partnerCLI(t, env, "partner", "list").must(t)
			for _, want := range []string{acme.PartnerID, "Acme", signed.PartnerID, "Signed Co", "https://app.acme.example:443"} {
				if !strings.Contains(list.stdout, want) {
					t.Errorf("list lacks %q:\n%s", want, list.stdout)
				}
			}
			listJSON := partnerCLI(t, env, "partner", "list", "--json").must(t)
			var views []map[string]any
			if err := json.Unmarshal([]byte(listJSON.stdout), &views); err != nil || len(views) != 2 {
				t.Fatalf("list --json: %v %s", err, listJSON.stdout)
			}
			if views[0]["client_login"] != true || views[1]["signed_requests"] != true {
				t.Fatalf("list --json settings: %v", views)
			}
			for _, out := range []string{list.stdout, list.stderr, listJSON.stdout} {
				for _, secret := range []string{acme.Secret, signed.Secret, acme.Secret[4:], signed.Secret[4:]} {
					if strings.Contains(out, secret) {
						t.Fatal("partner list shows a secret")
					}
				}
			}

			// The HTTP API honours what the CLI did.
			if db == nil {
				var err error
				db, err = storage.Open(context.Background(), dbURL, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
			}
			keys, err := partners.ParseKeyring(key)
			if err != nil {
				t.Fatal(err)
			}
			h := partnerAPI(t, db, keys)
			if c := partnerStatus(t, h, acme, false); c != 200 {
				t.Fatalf("secret after create: %d", c)
			}
			if c := partnerStatus(t, h, acme, true); c != 200 {
				t.Fatalf("JWT after create: %d", c)
			}
			if c := partnerStatus(t, h, signed, false); c != 401 {
				t.Fatalf("plain secret of a signed-requests partner: %d", c)
			}
			if c := partnerStatus(t, h, signed, true); c != 200 {
				t.Fatalf("JWT of a signed-requests partner: %d", c)
			}

			rotated := decodeCreated(t, partnerCLI(t, env, "partner", "rotate-secret", acme.PartnerID, "--json").must(t).stdout)
			if rotated.PartnerID != acme.PartnerID || rotated.Secret == acme.Secret {
				t.Fatalf("rotate-secret: %+v", rotated)
			}
			if c := partnerStatus(t, h, acme, false); c != 401 {
				t.Fatalf("old secret after rotation: %d", c)
			}
			if c := partnerStatus(t, h, acme, true); c != 401 {
				t.Fatalf("JWT signed with the old secret after rotation: %d", c)
			}
			if c := partnerStatus(t, h, rotated, false); c != 200 {
				t.Fatalf("new secret: %d", c)
			}
			if c := partnerStatus(t, h, rotated, true); c != 200 {
				t.Fatalf("JWT signed with the new secret: %d", c)
			}

			partnerCLI(t, env, "partner", "disable", acme.PartnerID).must(t)
			if c := partnerStatus(t, h, rotated, false); c != 401 {
				t.Fatalf("disabled partner: %d", c)
			}
			views = nil
			if err := json.Unmarshal([]byte(partnerCLI(t, env, "partner", "list", "--json").must(t).stdout), &views); err != nil ||
				views[0]["disabled"] != true || views[1]["disabled"] != false {
				t.Fatalf("list after disable: %v %v", views, err)
			}

			// Failures exit non-zero with a message.
			for _, args := range [][]string{
				{"partner", "rotate-secret", "pt_nosuchpartner"},
				{"partner", "disable", "pt_nosuchpartner"},
				{"partner", "create"},
				{"partner", "create", "--name", "Bad", "--origin", "https://x.example/path"},
				{"partner", "frobnicate"},
				{"partner"},
			} {
				if r := partnerCLI(t, env, args...); r.err == nil || r.stderr == "" {
					t.Errorf("%v: err %v, stderr %q", args, r.err, r.stderr)
				}
			}
		})
	}
}

// TestPartnerCLIWithoutSecretKey checks the zero-configuration mode: with no
// WALLETAUTH_SECRET_KEY the CLI creates a server key file beside the SQLite
// database (mode 0600) and seals the partner's signing key under it, so the
// database alone holds no usable secret; the server, reading the same file,
// verifies the partner's JWTs.
func TestPartnerCLIWithoutSecretKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI in subprocesses")
	}
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "nokey.db")
	env := map[string]string{"WALLETAUTH_DATABASE_URL": dbURL, "WALLETAUTH_SECRET_KEY": ""}
	r := partnerCLI(t, env, "partner", "create", "--name", "NoKey", "--json").must(t)
	p := decodeCreated(t, r.stdout)
	keyFile := filepath.Join(dir, "walletauth.key")
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no server key file beside the database: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	db, err := storage.Open(context.Background(), dbURL, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var stored []byte
	if err := db.Raw("SELECT signing_key FROM partners WHERE id = ?", p.PartnerID).Row().Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), p.Secret) {
		t.Fatal("the signing key is stored unencrypted")
	}
	noKeys, err := partners.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	if c := partnerStatus(t, partnerAPI(t, db, noKeys), p, true); c == 200 {
		t.Fatal("a JWT verified without the server key: the signing key is not sealed")
	}
	cfg, err := config.Load(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := loadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := partnerStatus(t, partnerAPI(t, db, keys), p, true); c != 200 {
		t.Fatalf("JWT with the key file's key: %d", c)
	}
	if bad := partnerCLI(t, map[string]string{"WALLETAUTH_DATABASE_URL": dbURL, "WALLETAUTH_SECRET_KEY": "too-short"},
		"partner", "list"); bad.err == nil || !strings.Contains(bad.stderr, "SECRET_KEY") {
		t.Fatalf("a malformed key must be refused: %v %q", bad.err, bad.stderr)
	}
}

// newPartner registers a partner in a's database, as the CLI does, and
// returns its secret.
func (a *testApp) newPartner(t *testing.T) string {
	t.Helper()
	keys, err := loadKeyring(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := partners.NewRegistry(a.db, keys, a.now).Create(context.Background(), partners.NewPartner{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestPartnerExternalIDInPath: an external ID is any printable text, so the
// per-user partner routes take it percent-encoded (url.PathEscape), "/"
// included (%2F), and match it against the raw path. "+" stays "+": "a+b/c"
// and "a b/c" are two users (Gin's own decoding of a raw path made "+" a
// space).
func TestPartnerExternalIDInPath(t *testing.T) {
	a := newTestApp(t)
	secret := a.newPartner(t)
	bearer := []string{"Authorization", "Bearer " + secret}
	for _, id := range []string{"a b/c", "a+b/c", "team/42", "a%2Fb", "x?y#z", "two  spaces", "ünï/cødé", "/", "%", "+", "1+1", "x/points", "a b/c|", "a+b/c|", "ü b/c", "ü+b/c"} {
		t.Run(id, func(t *testing.T) {
			rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": id}, bearer...)
			if rec.Code != http.StatusOK {
				t.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			var login struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &login); err != nil || login.User.ID == "" {
				t.Fatalf("login body %s: %v", rec.Body, err)
			}
			path := "/v1/partner/users/" + url.PathEscape(id)

			// Also as curl sends it: "|" and UTF-8 left unescaped.
			loose := strings.NewReplacer("%7C", "|", "%C3%BC", "ü").Replace(path)
			for _, p := range []string{path, loose} {
				rec = a.do(t, http.MethodGet, p, nil, bearer...)
				var got struct {
					ID string `json:"id"`
				}
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.ID != login.User.ID {
					t.Fatalf("GET %s: %d %s, want user %s", p, rec.Code, rec.Body, login.User.ID)
				}
			}
			rec = a.do(t, http.MethodPost, path+"/points", map[string]any{"amount": 7, "reason": "test", "idempotency_key": "k-" + id}, bearer...)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"points":7`) {
				t.Fatalf("POST %s/points: %d %s", path, rec.Code, rec.Body)
			}
			rec = a.do(t, http.MethodGet, path+"/ranking?n=1", nil, bearer...)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"external_id":`+string(mustJSON(t, id))) {
				t.Fatalf("GET %s/ranking: %d %s", path, rec.Code, rec.Body)
			}
		})
	}
	// No trailing-slash redirect: it would be built from the decoded path
	// and name another user ("x/points" + "/" → user "x"'s points).
	for _, path := range []string{"/v1/partner/users/x%2Fpoints/", "/v1/partner/users/team%2F42/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if rec := a.do(t, method, path, map[string]any{"amount": 1, "reason": "r", "idempotency_key": "slash"}, bearer...); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"not_found"`) {
				t.Fatalf("%s %s: %d %s, want 404 not_found", method, path, rec.Code, rec.Body)
			}
		}
	}
	// Another partner-ID shape is still unknown, not a routing accident.
	if rec := a.do(t, http.MethodGet, "/v1/partner/users/"+url.PathEscape("team/43"), nil, bearer...); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "user_not_found") {
		t.Fatalf("unknown external ID: %d %s, want 404 user_not_found", rec.Code, rec.Body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFirstRequestAfterPartnerLoginNeedsNoSQL: the session a partner login
// issues (inside the transaction that creates the user, or for a returning
// user) is cached once committed, so the user's first GET /v1/users/me with
// it reads nothing from the database.
func TestFirstRequestAfterPartnerLoginNeedsNoSQL(t *testing.T) {
	var hook statementHook
	a := newTestApp(t, withStatements(&hook))
	secret := a.newPartner(t)
	var statements atomic.Int64
	hook.set(func(kind string, _ *gorm.DB) {
		if kind == "select" || kind == "row" || kind == "raw" {
			statements.Add(1)
		}
	})
	for _, login := range []string{"first", "returning"} {
		rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "u-1", "first_name": "Ada"}, "Authorization", "Bearer "+secret)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s login: %d %s", login, rec.Code, rec.Body)
		}
		var lr struct {
			Registered bool   `json:"registered"`
			AuthToken  string `json:"auth_token"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &lr); err != nil || lr.AuthToken == "" || lr.Registered != (login == "first") {
			t.Fatalf("%s login body %s: %v", login, rec.Body, err)
		}
		statements.Store(0)
		if rec := a.do(t, http.MethodGet, "/v1/users/me", nil, "Authorization", "Bearer "+lr.AuthToken); rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/users/me after the %s login: %d %s", login, rec.Code, rec.Body)
		}
		if n := statements.Load(); n != 0 {
			t.Errorf("the first GET /v1/users/me after a %s partner login ran %d SQL statements, want none", login, n)
		}
	}
}
