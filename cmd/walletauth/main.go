// Command walletauth runs the walletauth service and its operator tasks.
//
//	walletauth serve            run the HTTP server (applies migrations first)
//	walletauth migrate          apply schema migrations and exit
//	walletauth partner …        manage partners (create, list, rotate-secret, disable)
//	walletauth keys …           manage the access-token signing keys (list, rotate)
//
// Every setting comes from WALLETAUTH_* environment variables (see README).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent replaces Go's GOGC=100 when GOGC is not set: the live
// heap is small (tens of MiB) and short-lived garbage per request is most
// of what is allocated, so a larger heap target buys ~7 % of server CPU
// per wallet sign-in (BENCHMARKS.md). defaultMemoryLimit, when GOMEMLIMIT
// is not set, keeps that from letting garbage pile up where one request
// allocates a lot: argon2id takes 19 MiB per email login, and at GOGC=400
// alone email-login load measured ~1 GiB of RSS.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 512 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "walletauth:", err)
		os.Exit(1)
	}
}

const usage = `usage: walletauth <command> [flags]

commands:
  serve     run the HTTP server (applies migrations first)
  migrate   apply schema migrations and exit
  partner   manage partners: create, list, rotate-secret, disable
  keys      manage the access-token signing keys: list, rotate

Settings come from WALLETAUTH_* environment variables; see the README.
`

// run is the whole program: main only supplies the process's context,
// arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr, nil)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "partner":
		return partnerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
