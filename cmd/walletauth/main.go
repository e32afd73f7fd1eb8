// Command walletauth runs the walletauth service and its operator tasks.
//
//	walletauth serve            run the HTTP server (applies migrations first)
//	walletauth migrate          apply schema migrations and exit
//	walletauth partner …        manage partners (create, list, rotate-secret, disable, enable)
//	walletauth keys …           manage the access-token signing keys (list, rotate)
//	walletauth version          print the version and commit
//
// Every setting comes from WALLETAUTH_* environment variables (see README).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/passwords"
)

// memoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT is not
// set: 96 MiB (the process, its fixed-size memos such as the 8 MiB of
// verified access tokens, and room), plus twice what the caches may hold
// (WALLETAUTH_CACHE_MIB), plus the argon2id memory of the hashes that may
// run at once (one per core, 19 MiB each), plus, without Redis, what the in-process challenge store may hold
// (WALLETAUTH_MEMORY_CHALLENGES_MAX entries of ~250 bytes; none when
// unbounded) — each at its default when unset or invalid, which config
// then reports. GC runs at Go's default GOGC=100 (BENCHMARKS.md has the
// CPU/RSS curve: GOGC=400 saved ~2 % of a sign-in's CPU for twice the
// memory); the limit keeps email-login bursts, whose argon2id garbage is
// 19 MiB a login, from growing the heap between collections, and it sits
// above the live heap the configured bounds allow, so the collector never
// runs flat out to meet it.
func memoryLimit(getenv func(string) string) int64 {
	setting := func(name string, def int) int64 {
		n, err := strconv.Atoi(strings.TrimSpace(getenv(config.Prefix + name)))
		if err != nil || n < 0 {
			n = def
		}
		return int64(n)
	}
	limit := int64(96<<20) + 2*min(setting("CACHE_MIB", config.DefaultCacheMiB), 1<<20)<<20
	limit += int64(runtime.GOMAXPROCS(0)) * int64(passwords.DefaultParams().Memory) << 10
	if strings.TrimSpace(getenv(config.Prefix+"REDIS_URL")) == "" {
		limit += min(setting("MEMORY_CHALLENGES_MAX", config.DefaultMemoryChallengesMax), 1<<32) * 256
	}
	return limit
}

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(os.Getenv))
	}
	// The process's one gin setting, here and not in run: tests drive run
	// and newApp in gin's TestMode.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, os.Environ()...); err != nil {
		var logged *loggedError
		if !errors.As(err, &logged) { // serve's fatal errors are already a JSON log line
			fmt.Fprintln(os.Stderr, "walletauth:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: walletauth <command> [flags]

commands:
  serve     run the HTTP server (applies migrations first)
  migrate   apply schema migrations and exit; says which it applied
  partner   manage partners: create, list, rotate-secret, disable, enable
  keys      manage the access-token signing keys: list, rotate
  mail      list the mail outbox (how a developer reads codes without SMTP)
  version   print the version and commit
  help      print this help, or a command's (walletauth help serve)

Every command takes -h or --help. Settings come from WALLETAUTH_*
environment variables (below; docs/configuration.md explains them).
`

// run is the whole program: main only supplies the process's context,
// arguments, environment and output. environ (os.Environ's NAME=value
// entries) is only looked through for WALLETAUTH_* names that are no
// setting, to warn of them; settings are read through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, environ ...string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	unknown := config.Unknown(environ)
	switch args[0] {
	case "serve":
		return ignoreHelp(serve(ctx, args[1:], getenv, stdout, stderr, &appOptions{unknownVars: unknown}))
	case "migrate":
		warnUnknown(stderr, unknown)
		return ignoreHelp(migrate(ctx, args[1:], getenv, stdout, stderr))
	case "partner":
		warnUnknown(stderr, unknown)
		return ignoreHelp(partnerCmd(ctx, args[1:], getenv, stdout, stderr))
	case "keys":
		warnUnknown(stderr, unknown)
		return ignoreHelp(keysCmd(ctx, args[1:], getenv, stdout, stderr))
	case "mail":
		warnUnknown(stderr, unknown)
		return ignoreHelp(mailCmd(ctx, args[1:], getenv, stdout, stderr))
	case "version", "--version":
		return ignoreHelp(versionCmd(args[1:], stdout, stderr))
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			return run(ctx, []string{args[1], "-h"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		printVars(stdout, nil)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q (see walletauth help)", args[0])
}

// ignoreHelp makes a command that only printed its -h succeed.
func ignoreHelp(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// loggedError is an error serve has already written to its log: main does
// not print it again, so serve's output stays one JSON object per line.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }
