package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
)

const partnerUsage = `usage: walletauth partner <command> [flags]

commands:
  create --name NAME [--origin URL]... [--client-login] [--signed-requests] [--json]
                        create a partner; prints its partner_id and secret (shown once)
  list [--json]         list partners: ids, names, settings (never secrets)
  rotate-secret ID [--json]
                        give a partner a new secret; the old one stops working at once
  disable ID            refuse the partner's requests (401 partner_unauthorized)
  enable ID             accept a disabled partner's requests again

Each command takes -h or --help. The database is the configured one
(WALLETAUTH_DATABASE_URL); migrations are applied first.
WALLETAUTH_SECRET_KEY seals the partners' signing keys: with PostgreSQL,
create and rotate-secret refuse to run without it.
`

// partnerVars are the settings the partner commands read (every other one
// is checked too).
var partnerVars = []string{"DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FILE"}

const partnerNote = "Every other WALLETAUTH_* setting is checked too (see walletauth serve -h)."

func partnerHelp(usage, summary string) help {
	return help{usage: "walletauth partner " + usage, summary: summary, vars: partnerVars, note: partnerNote}
}

// partnerCmd runs "walletauth partner …" against the configured database.
func partnerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, partnerUsage)
		return errors.New("partner: no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "create":
		return partnerCreate(ctx, args, getenv, stdout, stderr)
	case "list":
		return partnerList(ctx, args, getenv, stdout, stderr)
	case "rotate-secret":
		return partnerRotate(ctx, args, getenv, stdout, stderr)
	case "disable", "enable":
		return partnerSetDisabled(ctx, cmd, args, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, partnerUsage)
		printVars(stdout, partnerVars)
		return nil
	}
	fmt.Fprint(stderr, partnerUsage)
	return fmt.Errorf("partner: unknown command %q", cmd)
}

// openRegistry opens and migrates the configured database and returns the
// partner registry over it, and the function that closes it. seals says
// whether the command seals signing keys (create, rotate-secret): only
// those need the server key where it must be given (PostgreSQL).
func openRegistry(ctx context.Context, getenv func(string) string, seals bool) (*partners.Registry, func(), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	keys, err := loadKeyring(cfg)
	if errors.Is(err, errSecretKeyRequired) && !seals && cfg.SecretKey == "" && cfg.SecretKeyFile == "" {
		keys, err = partners.NewKeyring() // list, disable, enable open and seal nothing
	}
	if err != nil {
		return nil, nil, err
	}
	db, err := openDatabase(ctx, cfg, storage.Options{MaxOpenConns: 2})
	if err != nil {
		return nil, nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return partners.NewRegistry(db, keys, time.Now), func() { _ = db.Close() }, nil
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func partnerCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("partner create")
	name := fs.String("name", "", "the partner's name (required)")
	var origins stringList
	fs.Var(&origins, "origin", "an origin (scheme://host[:port]) allowed to call client-side login; repeatable")
	clientLogin := fs.Bool("client-login", false, "allow client-side (browser) external-ID login from --origin pages")
	signed := fs.Bool("signed-requests", false, "accept only HS256-signed request JWTs, never the plain secret")
	asJSON := fs.Bool("json", false, `print {"partner_id": "…", "secret": "…"} on one line`)
	pos, err := parseFlags(fs, args, partnerHelp("create --name NAME [flags]",
		"Create a partner and print its partner_id and secret. The secret is shown once: the service keeps only its hash "+
			"and its signing key sealed under WALLETAUTH_SECRET_KEY (required with PostgreSQL)."), stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("partner create: unexpected argument %q", pos[0])
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("partner create: --name is required")
	}
	reg, closeDB, err := openRegistry(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer closeDB()
	p, secret, err := reg.Create(ctx, partners.NewPartner{
		Name: *name, Origins: origins, ClientLogin: *clientLogin, SignedRequests: *signed,
	})
	if err != nil {
		return fmt.Errorf("partner create: %w", err)
	}
	if *clientLogin && len(origins) == 0 {
		fmt.Fprintln(stderr, "warning: --client-login without --origin: no page can use client-side login yet")
	}
	return printSecret(stdout, stderr, p.ID, secret, *asJSON)
}

func printSecret(stdout, stderr io.Writer, id, secret string, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(stdout).Encode(struct { //nolint:gosec // G117: a new secret is printed once, by design
			PartnerID string `json:"partner_id"`
			Secret    string `json:"secret"`
		}{id, secret})
	}
	fmt.Fprintf(stdout, "partner_id: %s\nsecret: %s\n", id, secret)
	fmt.Fprintln(stderr, "Store the secret now: it is not shown again (the service keeps only its hash).")
	return nil
}

type partnerView struct {
	ID             string   `json:"partner_id"`
	Name           string   `json:"name"`
	ClientLogin    bool     `json:"client_login"`
	SignedRequests bool     `json:"signed_requests"`
	Disabled       bool     `json:"disabled"`
	Origins        []string `json:"origins"`
	CreatedAt      string   `json:"created_at"`
}

func partnerList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("partner list")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args, partnerHelp("list [--json]",
		"List the partners: IDs, names, settings, whether disabled (never secrets)."), stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("partner list: unexpected argument %q", pos[0])
	}
	reg, closeDB, err := openRegistry(ctx, getenv, false)
	if err != nil {
		return err
	}
	defer closeDB()
	ps, err := reg.List(ctx)
	if err != nil {
		return err
	}
	views := make([]partnerView, len(ps))
	for i, p := range ps {
		views[i] = partnerView{ID: p.ID, Name: p.Name, ClientLogin: p.ClientLogin, SignedRequests: p.SignedRequests,
			Disabled: p.Disabled, Origins: p.OriginList(), CreatedAt: p.CreatedAt.UTC().Format(time.RFC3339)}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTNER_ID\tNAME\tCLIENT_LOGIN\tSIGNED_REQUESTS\tDISABLED\tORIGINS\tCREATED_AT")
	for _, v := range views {
		origins := strings.Join(v.Origins, ",")
		if origins == "" {
			origins = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%t\t%t\t%s\t%s\n", v.ID, v.Name, v.ClientLogin, v.SignedRequests, v.Disabled, origins, v.CreatedAt)
	}
	return tw.Flush()
}

func partnerRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("partner rotate-secret")
	asJSON := fs.Bool("json", false, `print {"partner_id": "…", "secret": "…"} on one line`)
	pos, err := parseFlags(fs, args, partnerHelp("rotate-secret ID [--json]",
		"Give the partner a new secret and print it (shown once); the old one stops working at once, on every instance."), stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("partner rotate-secret: want exactly one partner ID")
	}
	reg, closeDB, err := openRegistry(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer closeDB()
	secret, err := reg.RotateSecret(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("partner rotate-secret %s: %w", pos[0], err)
	}
	return printSecret(stdout, stderr, pos[0], secret, *asJSON)
}

func partnerSetDisabled(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("partner " + cmd)
	summary := "Refuse the partner's requests (401 partner_unauthorized) on every instance; its users and data stay. `partner enable ID` undoes it."
	if cmd == "enable" {
		summary = "Accept a disabled partner's requests again (undoes `partner disable ID`); its secret is unchanged."
	}
	pos, err := parseFlags(fs, args, partnerHelp(cmd+" ID", summary), stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("partner %s: want exactly one partner ID", cmd)
	}
	reg, closeDB, err := openRegistry(ctx, getenv, false)
	if err != nil {
		return err
	}
	defer closeDB()
	if cmd == "disable" {
		err = reg.Disable(ctx, pos[0])
	} else {
		err = reg.Enable(ctx, pos[0])
	}
	if err != nil {
		return fmt.Errorf("partner %s %s: %w", cmd, pos[0], err)
	}
	fmt.Fprintf(stdout, "partner %s %sd\n", pos[0], cmd)
	return nil
}
