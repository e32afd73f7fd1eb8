package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/walletauth/walletauth/config"
)

// help is what a command's -h prints besides its flags.
type help struct {
	usage   string   // "walletauth serve [flags]"
	summary string   // what the command does, one paragraph
	vars    []string // the WALLETAUTH_* settings it reads, without the prefix; nil: every setting
	note    string   // printed after the variables, when set
}

// noVars marks a command that reads no setting.
var noVars = []string{}

// newFlagSet returns a flag set that prints nothing itself: parseFlags
// writes -h to stdout and a mistake to stderr.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// errHelpShown is returned by parseFlags after -h/--help printed the
// command's help: the command has nothing more to do and succeeds.
var errHelpShown = errors.New("help shown")

// parseFlags parses args for fs, letting flags come before or after the
// positional arguments ("rotate-secret ID --json"), and returns those. On
// -h or --help it prints h and fs's flags to stdout and returns
// errHelpShown; on a bad flag it prints them to stderr and returns the
// mistake.
func parseFlags(fs *flag.FlagSet, args []string, h help, stdout, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, fs, h)
			return nil, errHelpShown
		}
		if err != nil {
			printShortUsage(stderr, fs, h)
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printHelp writes a command's usage, its flags and the settings it reads.
func printHelp(w io.Writer, fs *flag.FlagSet, h help) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags:\n", h.usage, strings.TrimSpace(h.summary))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintln(w, "  -h, --help\n    \tprint this help")
	printVars(w, h.vars)
	if h.note != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(h.note))
	}
}

// printShortUsage is what a mistake in the flags prints: the usage line
// and where the rest is.
func printShortUsage(w io.Writer, fs *flag.FlagSet, h help) {
	fmt.Fprintf(w, "usage: %s\n(walletauth %s -h lists its flags and settings)\n", h.usage, fs.Name())
}

// printVars lists the named settings (every one for nil) with their
// defaults, as the table of docs/configuration.md does.
func printVars(w io.Writer, names []string) {
	if names != nil && len(names) == 0 {
		fmt.Fprintln(w, "\nenvironment: this command reads no "+config.Prefix+"* variable.")
		return
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	fmt.Fprintln(w, "\nenvironment:")
	for _, s := range config.Settings() {
		if names != nil && !want[s.Name] {
			continue
		}
		fmt.Fprintf(w, "  %s%s (default: %s)\n    \t%s\n", config.Prefix, s.Name, s.Default, s.Help)
	}
}

// warnUnknown tells of WALLETAUTH_* variables that name no setting, for the
// commands that log nothing (serve logs them instead).
func warnUnknown(stderr io.Writer, unknown []config.UnknownVariable) {
	for _, u := range unknown {
		fmt.Fprintf(stderr, "warning: %s\n", unknownMessage(u))
	}
}

func unknownMessage(u config.UnknownVariable) string {
	msg := u.Name + " is not a walletauth setting and is ignored"
	if u.Suggestion != "" {
		msg += " (did you mean " + u.Suggestion + "?)"
	}
	return msg
}

// version and commit are set at build time by the Makefile
// (-ldflags "-X main.version=… -X main.commit=…"); left empty, they come
// from the module's build information (the VCS revision Go records).
var (
	version string
	commit  string
)

// versionLine is what `walletauth version` prints.
func versionLine(bi *debug.BuildInfo, ok bool, version, commit string) string {
	modified := false
	if ok {
		if version == "" && bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	if commit == "" {
		commit = "unknown"
	} else if modified {
		commit += "+modified"
	}
	return fmt.Sprintf("walletauth %s (commit %s, %s)", version, commit, runtime.Version())
}

func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version")
	pos, err := parseFlags(fs, args, help{usage: "walletauth version", summary: "Print the version and the commit it was built from.", vars: noVars}, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("version: unexpected argument %q", pos[0])
	}
	bi, ok := debug.ReadBuildInfo()
	_, err = fmt.Fprintln(stdout, versionLine(bi, ok, version, commit))
	return err
}
