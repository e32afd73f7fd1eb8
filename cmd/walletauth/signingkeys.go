package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens"
)

const keysUsage = `usage: walletauth keys <command> [--json]

commands:
  list [--json]     list the access-token signing keys: kid, created, current,
                    retired (never private parts)
  rotate [--json]   make a new key current: it is in the JWKS at once and signs
                    on every instance within a second; the previous key stays
                    published until every token it signed has expired

The database is the configured one (WALLETAUTH_DATABASE_URL); migrations are
applied first, and a first key is created if there is none. Keys are sealed
under WALLETAUTH_SECRET_KEY. With WALLETAUTH_REDIS_URL set, a rotation is
announced to the running instances at once; they also poll.
`

// keysCmd runs "walletauth keys …" against the configured database.
func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "list", "rotate":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON on one line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys %s: unexpected argument %q", cmd, fs.Arg(0))
	}
	keys, closeAll, err := openKeys(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeAll()
	if cmd == "rotate" {
		k, err := keys.Rotate(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(k)
		}
		fmt.Fprintf(stdout, "new current key %s\n", k.KID)
		return nil
	}
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"keys": list})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tCREATED\tCURRENT\tRETIRED\tPUBLISHED UNTIL")
	for _, k := range list {
		retired, until := "-", "-"
		if k.RetiredAt != nil {
			retired = k.RetiredAt.Format(time.RFC3339)
			until = k.PublishedUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\n", k.KID, k.CreatedAt.Format(time.RFC3339), k.Current, retired, until)
	}
	return tw.Flush()
}

// openKeys opens and migrates the configured database and returns its
// signing keys (loaded: a first key is made when there is none), with a bus
// over Redis when configured so that a rotation reaches the running
// instances at once.
func openKeys(ctx context.Context, getenv func(string) string) (*tokens.Keys, func(), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := loadKeyring(cfg)
	if err != nil {
		return nil, nil, err
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, storage.Options{MaxOpenConns: 2})
	if err != nil {
		return nil, nil, err
	}
	closers := []func() error{db.Close}
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	if err := db.Migrate(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	var bus *cache.Bus
	if cfg.RedisURL != "" {
		client, err := kv.NewRedisClient(cfg.RedisURL)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("WALLETAUTH_REDIS_URL: %w", err)
		}
		closers = append(closers, client.Close)
		bus = cache.NewRedisBus(client, kv.DefaultPrefix+"invalidate", nil)
	}
	keys := tokens.NewKeys(db, sealer, bus, cfg.AccessTokenTTL, time.Now, nil)
	if err := keys.Load(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	return keys, closeAll, nil
}
