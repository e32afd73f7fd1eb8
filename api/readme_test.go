package api_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api"
)

// The error table (docs/errors.md) lists every answer of an error the
// service can give, with its status, and nothing else: each code the code
// base declares (each errs.New call and each errs.Error literal, found in
// the source with go/ast) with its status in api's table, and each status an
// endpoint gives a code instead (api.WithStatus).
func TestErrorDocsListEveryErrorCode(t *testing.T) {
	d := declaredErrors(t, "..")
	if len(d.codes) < 20 {
		t.Fatalf("found only %d declared errors: the source walk is broken", len(d.codes))
	}
	declared := d.answers(api.StatusTable())
	documented := readmeErrors(t, "../docs/errors.md")
	for e, where := range declared {
		if !documented[e] {
			t.Errorf("docs/errors.md's error table has no row %d `%s` (declared at %s)", e.status, e.code, where)
		}
	}
	for e := range documented {
		if _, ok := declared[e]; !ok {
			t.Errorf("docs/errors.md's error table lists %d `%s`, which the code base does not answer", e.status, e.code)
		}
	}
}

var backticked = regexp.MustCompile("`([a-z0-9_]+)`")

// readmeErrors returns the (status, code) rows of the table of the page
// titled "# Errors" (up to its first "## " heading).
func readmeErrors(t *testing.T, path string) map[statusCode]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut("\n"+string(b), "\n# Errors\n")
	if !ok {
		t.Fatalf(`%s has no "# Errors" title`, path)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	out := map[statusCode]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "|") {
			continue
		}
		status, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			continue // the header and separator rows
		}
		codes := backticked.FindAllStringSubmatch(cells[2], -1)
		if len(codes) == 0 {
			t.Errorf("%s: error row %q names no `code`", path, line)
		}
		for _, m := range codes {
			out[statusCode{status, m[1]}] = true
		}
	}
	return out
}

// The project carries its own documentation: no Markdown file of it links
// to, or names, the steering folder ../shared/ (which users of the project
// do not have).
func TestDocsDoNotLinkShared(t *testing.T) {
	n := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".md") {
			return nil
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "shared/API.md") || strings.Contains(line, "../shared") {
				t.Errorf("%s:%d refers to the steering folder: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("found only %d Markdown files: the walk is broken", n)
	}
}
