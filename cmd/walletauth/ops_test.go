package main

// Operations and CLI (issue 13): the server key with PostgreSQL, the log's
// shape, -h on every command, version, unknown variables, extra arguments,
// migrate's report, partner enable, and error messages for people.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// runCLI calls run with env (names with the prefix) and returns its
// output and result.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, mapEnv(env), &out, &errOut, environOf(env)...)
	return out.String(), errOut.String(), err
}

// pgEnv is a fresh PostgreSQL schema's environment as a map (skips without
// WALLETAUTH_TEST_DATABASE_URL, fails in CI), without the server key that
// postgresEnv gives every instance: these tests are about its absence.
func pgEnv(t *testing.T) map[string]string {
	t.Helper()
	pairs := postgresEnv(t)
	env := map[string]string{"WALLETAUTH_HTTP_ADDR": "127.0.0.1:0"}
	for i := 0; i+1 < len(pairs); i += 2 {
		env["WALLETAUTH_"+pairs[i]] = pairs[i+1]
	}
	delete(env, "WALLETAUTH_SECRET_KEY")
	return env
}

// With PostgreSQL, serve and the CLI commands that seal partner keys refuse
// to start without WALLETAUTH_SECRET_KEY instead of each making up a key
// file in its working directory (a partner created from another directory
// then failed every signed request with 401 request_signature_invalid).
func TestPostgresRequiresSecretKey(t *testing.T) {
	env := pgEnv(t)
	dir := t.TempDir()
	t.Chdir(dir) // where a key file would have been made up

	wantRefusal := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("started without WALLETAUTH_SECRET_KEY on PostgreSQL")
		}
		if !strings.Contains(err.Error(), "WALLETAUTH_SECRET_KEY is required with PostgreSQL") {
			t.Errorf("error %q does not say that WALLETAUTH_SECRET_KEY is required", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "walletauth.key")); !os.IsNotExist(err) {
			t.Errorf("a key file was made up in the working directory (stat: %v)", err)
		}
	}
	t.Run("serve", func(t *testing.T) {
		stdout, stderr, err := runCLI(t, env, "serve")
		wantRefusal(t, err)
		if strings.Contains(stdout, "listening") {
			t.Error("serve listened")
		}
		if !strings.Contains(stderr, "WALLETAUTH_SECRET_KEY is required") {
			t.Errorf("the refusal is not in serve's log: %q", stderr)
		}
	})
	for _, args := range [][]string{
		{"partner", "create", "--name", "Acme"},
		{"partner", "rotate-secret", "pt_whatever"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, _, err := runCLI(t, env, args...)
			wantRefusal(t, err)
			if strings.Contains(stdout, "secret") {
				t.Errorf("printed a secret: %q", stdout)
			}
		})
	}
	t.Run("an explicit key file must exist", func(t *testing.T) {
		e := map[string]string{"WALLETAUTH_SECRET_KEY_FILE": filepath.Join(dir, "missing.key")}
		for k, v := range env {
			e[k] = v
		}
		_, _, err := runCLI(t, e, "partner", "create", "--name", "Acme")
		if err == nil || !strings.Contains(err.Error(), "missing.key does not exist") {
			t.Fatalf("partner create with a missing WALLETAUTH_SECRET_KEY_FILE: %v", err)
		}
	})
	// Commands that seal nothing need no key; with one, create works.
	if _, stderr, err := runCLI(t, env, "partner", "list"); err != nil {
		t.Fatalf("partner list without a key: %v\n%s", err, stderr)
	}
	env["WALLETAUTH_SECRET_KEY"] = testSecretKey
	if stdout, stderr, err := runCLI(t, env, "partner", "create", "--name", "Acme", "--json"); err != nil {
		t.Fatalf("partner create with WALLETAUTH_SECRET_KEY: %v\n%s", err, stderr)
	} else {
		decodeCreated(t, stdout)
	}
}

// The log of a run is one JSON object per line: the access log (durations
// in duration_ms, a 4xx with its error code), the startup and shutdown
// lines, the unknown-variable warning, and go-redis's own lines.
func TestServeLogIsOneJSONObjectPerLine(t *testing.T) {
	// A sentinel that refuses connections: go-redis logs its failed lookups.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	s := startServer(t, "LOG_FORMAT", "json", "CHAINIDS", "5",
		"REDIS_URL", "redis+sentinel://"+closed+"/0?master_name=walletauth&dial_timeout=200ms&max_retries=-1")

	if code := s.call(t, http.MethodGet, "/v1/users/me", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("/v1/users/me without a token = %d, want 401", code)
	}
	if code := s.call(t, http.MethodGet, "/no/such/path", "", nil, nil); code != http.StatusNotFound {
		t.Fatalf("unknown path = %d, want 404", code)
	}
	s.call(t, http.MethodGet, "/readyz", "", nil, nil) // asks the (unreachable) Redis
	if err := s.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}

	var requests, redisLines int
	var saw401, sawWarning, sawListening bool
	for i, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %d is not a JSON object: %q", i+1, line)
			continue
		}
		if strings.Contains(line, "Error #") {
			t.Errorf("line %d has gin's error numbering: %s", i+1, line)
		}
		for k := range m {
			if k == "duration" || k == "deadline" {
				t.Errorf("line %d has a duration without its unit in the key (%s): %s", i+1, k, line)
			}
		}
		switch {
		case m["msg"] == "request":
			requests++
			if _, ok := m["duration_ms"].(float64); !ok {
				t.Errorf("access log line without a numeric duration_ms: %s", line)
			}
			if st, _ := m["status"].(float64); st >= 400 && m["error_code"] == nil {
				t.Errorf("a %v line without its error_code: %s", st, line)
			}
			if m["status"] == float64(401) && m["error_code"] == "unauthorized" {
				saw401 = true
			}
		case m["component"] == "redis":
			redisLines++
		case m["variable"] == "WALLETAUTH_CHAINIDS":
			sawWarning = m["did_you_mean"] == "WALLETAUTH_CHAIN_IDS" && m["level"] == "WARN"
		case m["msg"] == "listening":
			sawListening = true
		}
	}
	if requests < 3 || !saw401 {
		t.Errorf("%d access log lines, 401 with error_code unauthorized: %v", requests, saw401)
	}
	if redisLines == 0 {
		t.Error("no go-redis line went through the service's log")
	}
	if !sawWarning {
		t.Error("no warning naming WALLETAUTH_CHAINIDS (did you mean WALLETAUTH_CHAIN_IDS)")
	}
	if !sawListening {
		t.Error("no startup line in the log")
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("log:\n%s", s.stderr)
	}
}

// -h and --help print the command's usage, flags and settings on stdout
// and succeed, without opening anything (the database here cannot be).
func TestHelpOnEveryCommand(t *testing.T) {
	env := map[string]string{"WALLETAUTH_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "missing", "x.db")}
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"serve", "migrate", "partner", "version", "WALLETAUTH_HTTP_ADDR", "WALLETAUTH_PARTNER_RATE"}},
		{[]string{"serve"}, []string{"-addr", "-database-url", "-redis-url", "WALLETAUTH_HTTP_ADDR", "WALLETAUTH_SECRET_KEY", "WALLETAUTH_PARTNER_RATE"}},
		{[]string{"migrate"}, []string{"-database-url", "WALLETAUTH_DATABASE_URL"}},
		{[]string{"partner"}, []string{"create", "list", "rotate-secret", "disable", "enable", "WALLETAUTH_DATABASE_URL", "WALLETAUTH_SECRET_KEY"}},
		{[]string{"partner", "create"}, []string{"-name", "-origin", "-client-login", "-signed-requests", "-json", "WALLETAUTH_SECRET_KEY"}},
		{[]string{"partner", "list"}, []string{"-json", "WALLETAUTH_DATABASE_URL"}},
		{[]string{"partner", "rotate-secret"}, []string{"-json", "WALLETAUTH_SECRET_KEY"}},
		{[]string{"partner", "disable"}, []string{"disable ID", "WALLETAUTH_DATABASE_URL"}},
		{[]string{"partner", "enable"}, []string{"enable ID", "WALLETAUTH_DATABASE_URL"}},
		{[]string{"version"}, []string{"version", "no WALLETAUTH_* variable"}},
	}
	for _, tc := range cases {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, tc.args...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				stdout, stderr, err := runCLI(t, env, args...)
				if err != nil {
					t.Fatalf("run = %v, want nil (exit 0)\nstderr: %s", err, stderr)
				}
				if !strings.Contains(stdout, "usage: walletauth") || !strings.Contains(stdout, "--help") {
					t.Errorf("stdout has no usage: %q", stdout)
				}
				for _, w := range tc.want {
					if !strings.Contains(stdout, w) {
						t.Errorf("help does not mention %q:\n%s", w, stdout)
					}
				}
			})
		}
	}
	if stdout, _, err := runCLI(t, env, "help", "partner"); err != nil || !strings.Contains(stdout, "rotate-secret") {
		t.Errorf("help partner = %v, %q", err, stdout)
	}
	// A bad flag is a failure, with the usage on stderr.
	if stdout, stderr, err := runCLI(t, env, "serve", "-bogus"); err == nil || !strings.Contains(err.Error(), "-bogus") ||
		!strings.Contains(stderr, "usage: walletauth serve") || stdout != "" {
		t.Errorf("serve -bogus = %v, stdout %q, stderr %q", err, stdout, stderr)
	}
}

func TestServeAndMigrateRefuseArguments(t *testing.T) {
	env := map[string]string{"WALLETAUTH_HTTP_ADDR": "127.0.0.1:0", "WALLETAUTH_DATABASE_URL": sqliteURL(t)}
	for _, cmd := range []string{"serve", "migrate"} {
		stdout, _, err := runCLI(t, env, cmd, "--addr", "127.0.0.1:0", "now")
		if err == nil {
			t.Fatalf("%s now: started", cmd)
		}
		if !strings.Contains(err.Error(), `takes no arguments, got "now"`) {
			t.Errorf("%s now: error %q does not name the argument", cmd, err)
		}
		if stdout != "" {
			t.Errorf("%s now printed %q", cmd, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	stdout, _, err := runCLI(t, nil, "version")
	if err != nil || !strings.HasPrefix(stdout, "walletauth ") || !strings.Contains(stdout, "commit ") {
		t.Fatalf("version = %v, %q", err, stdout)
	}
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got := versionLine(bi, true, "", ""); !strings.Contains(got, "walletauth v1.2.3 (commit 0123456789abcdef+modified") {
		t.Errorf("from build info: %q", got)
	}
	if got := versionLine(bi, true, "v2.0.0", "feedface"); !strings.Contains(got, "walletauth v2.0.0 (commit feedface") {
		t.Errorf("-ldflags values do not win: %q", got)
	}
	if got := versionLine(nil, false, "", ""); !strings.Contains(got, "(devel) (commit unknown") {
		t.Errorf("without build info: %q", got)
	}
}

// A WALLETAUTH_* variable that is no setting is warned of, with the closest
// name; the command still runs.
func TestUnknownVariableWarning(t *testing.T) {
	env := map[string]string{"WALLETAUTH_DATABASE_URL": sqliteURL(t), "WALLETAUTH_CHAINIDS": "1,5", "WALLETAUTH_TEST_ANYTHING": "x"}
	stdout, stderr, err := runCLI(t, env, "migrate")
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(stderr, "WALLETAUTH_CHAINIDS is not a walletauth setting") || !strings.Contains(stderr, "did you mean WALLETAUTH_CHAIN_IDS?") {
		t.Errorf("no warning naming WALLETAUTH_CHAINIDS: stderr %q", stderr)
	}
	if strings.Contains(stderr, "WALLETAUTH_TEST_ANYTHING") {
		t.Errorf("the tests' own variables are warned of: %q", stderr)
	}
	if !strings.Contains(stdout, "applied migration") {
		t.Errorf("migrate did not run: %q", stdout)
	}
}

// partner enable undoes partner disable.
func TestPartnerEnable(t *testing.T) {
	env := map[string]string{"WALLETAUTH_DATABASE_URL": sqliteURL(t), "WALLETAUTH_SECRET_KEY": testSecretKey}
	stdout, stderr, err := runCLI(t, env, "partner", "create", "--name", "Acme", "--json")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, stderr)
	}
	p := decodeCreated(t, stdout)
	disabled := func() bool {
		t.Helper()
		stdout, stderr, err := runCLI(t, env, "partner", "list", "--json")
		if err != nil {
			t.Fatalf("list: %v\n%s", err, stderr)
		}
		var views []partnerView
		if err := json.Unmarshal([]byte(stdout), &views); err != nil || len(views) != 1 {
			t.Fatalf("list --json = %q, %v", stdout, err)
		}
		return views[0].Disabled
	}
	for _, step := range []struct {
		cmd  string
		want bool
	}{{"disable", true}, {"enable", false}, {"enable", false}} {
		stdout, stderr, err := runCLI(t, env, "partner", step.cmd, p.PartnerID)
		if err != nil || !strings.Contains(stdout, step.cmd+"d") {
			t.Fatalf("partner %s = %v, %q %q", step.cmd, err, stdout, stderr)
		}
		if got := disabled(); got != step.want {
			t.Fatalf("after partner %s: disabled = %v", step.cmd, got)
		}
	}
	if _, _, err := runCLI(t, env, "partner", "enable", "pt_nosuchpartner"); err == nil {
		t.Error("enable of an unknown partner succeeded")
	}
}

// CLI errors say what is wrong and which setting to look at, without Go
// package prefixes or raw library text.
func TestCLIErrorsAreForPeople(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-folder", "walletauth.db")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"sqlite folder missing", map[string]string{"WALLETAUTH_DATABASE_URL": "sqlite://" + missing}, []string{"migrate"},
			[]string{"WALLETAUTH_DATABASE_URL", missing, "does not exist"}},
		{"postgres unreachable", map[string]string{"WALLETAUTH_DATABASE_URL": "postgres://u@127.0.0.1:1/db?connect_timeout=2"}, []string{"migrate"},
			[]string{"WALLETAUTH_DATABASE_URL", "cannot open the PostgreSQL database"}},
		{"bad redis URL", map[string]string{"WALLETAUTH_DATABASE_URL": sqliteURL(t), "WALLETAUTH_HTTP_ADDR": "127.0.0.1:0",
			"WALLETAUTH_REDIS_URL": "redis://127.0.0.1:6379/x"}, []string{"serve"},
			[]string{"WALLETAUTH_REDIS_URL", "invalid database number"}},
		{"bad secret key", map[string]string{"WALLETAUTH_DATABASE_URL": sqliteURL(t), "WALLETAUTH_SECRET_KEY": "abc"}, []string{"partner", "list"},
			[]string{"WALLETAUTH_SECRET_KEY", "want 32"}},
		{"bad HTTP_ADDR", map[string]string{"WALLETAUTH_DATABASE_URL": sqliteURL(t), "WALLETAUTH_HTTP_ADDR": "http://127.0.0.1:8080"}, []string{"serve"},
			[]string{"WALLETAUTH_HTTP_ADDR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			for _, raw := range []string{"storage:", "kv:", "partners:", "config:", "strconv.", "SIWE_"} {
				if strings.Contains(msg, raw) {
					t.Errorf("error %q has %q", msg, raw)
				}
			}
		})
	}
}
