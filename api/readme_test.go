package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// statusCode is one error of the contract: its HTTP status and code.
type statusCode struct {
	status int
	code   string
}

// The error table (docs/errors.md) lists every error the code base declares (each
// api.NewError call and each api.Error literal, found in the source with
// go/ast), with its status, and nothing else.
func TestErrorDocsListEveryErrorCode(t *testing.T) {
	declared := declaredErrors(t, "..")
	if len(declared) < 20 {
		t.Fatalf("found only %d declared errors: the source walk is broken", len(declared))
	}
	documented := readmeErrors(t, "../docs/errors.md")
	for e, where := range declared {
		if !documented[e] {
			t.Errorf("docs/errors.md's error table has no row %d `%s` (declared at %s)", e.status, e.code, where)
		}
	}
	for e := range documented {
		if _, ok := declared[e]; !ok {
			t.Errorf("docs/errors.md's error table lists %d `%s`, which the code base does not declare", e.status, e.code)
		}
	}
}

// declaredErrors walks the module's non-test Go files under root and
// returns every error declared with NewError (or as an Error literal with a
// Code), with where it is declared. A code or status that is not a
// constant the test can read fails the test: the table could not be checked.
func declaredErrors(t *testing.T, root string) map[statusCode]string {
	t.Helper()
	out := map[statusCode]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				// NewError's own body builds an Error from its parameters.
				return !(f.Name.Name == "api" && n.Name.Name == "NewError")
			case *ast.CallExpr:
				if isName(n.Fun, f.Name.Name, "NewError") {
					if len(n.Args) < 2 {
						t.Errorf("%s: NewError with %d arguments", fset.Position(n.Pos()), len(n.Args))
						return true
					}
					add(t, out, fset.Position(n.Pos()).String(), n.Args[0], n.Args[1])
				}
			case *ast.CompositeLit:
				if isName(n.Type, f.Name.Name, "Error") {
					var status, code ast.Expr
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							switch id, _ := kv.Key.(*ast.Ident); {
							case id == nil:
							case id.Name == "Status":
								status = kv.Value
							case id.Name == "Code":
								code = kv.Value
							}
						}
					}
					if code != nil {
						add(t, out, fset.Position(n.Pos()).String(), status, code)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// isName reports whether e names api's sym: api.sym, or sym inside package api.
func isName(e ast.Expr, pkg, sym string) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "api" && e.Sel.Name == sym
	case *ast.Ident:
		return pkg == "api" && e.Name == sym
	case *ast.StarExpr:
		return isName(e.X, pkg, sym)
	}
	return false
}

func add(t *testing.T, out map[statusCode]string, where string, statusExpr, codeExpr ast.Expr) {
	t.Helper()
	lit, ok := codeExpr.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Errorf("%s: an error code that is not a string literal: the error table cannot be checked", where)
		return
	}
	code, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	status := statusOf(statusExpr)
	if status == 0 {
		t.Errorf("%s: error %q has a status that is not an http.Status constant or an integer", where, code)
		return
	}
	out[statusCode{status, code}] = where
}

// statusOf reads http.StatusXxx or an integer literal; 0 when neither.
func statusOf(e ast.Expr) int {
	switch e := e.(type) {
	case *ast.BasicLit:
		n, _ := strconv.Atoi(e.Value)
		return n
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "http" {
			for code := 100; code < 600; code++ {
				if text := http.StatusText(code); text != "" && "Status"+statusName(text) == e.Sel.Name {
					return code
				}
			}
		}
	}
	return 0
}

// statusName is the Go constant's name of a status text ("Not Found" →
// NotFound; the few whose names differ are listed).
func statusName(text string) string {
	switch text {
	case "Request Entity Too Large":
		return "RequestEntityTooLarge"
	case "Request URI Too Long":
		return "RequestURITooLong"
	case "I'm a teapot":
		return "Teapot"
	case "Non-Authoritative Information":
		return "NonAuthoritativeInfo"
	case "HTTP Version Not Supported":
		return "HTTPVersionNotSupported"
	}
	return strings.NewReplacer(" ", "", "-", "").Replace(text)
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
