package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api"
)

// Every error code the code base declares (each errs.New call and each
// errs.Error literal, found in the source with go/ast) has a row in api's
// status table, and the table has no row for a code nobody declares: a code
// without a row would be answered 500 internal.
func TestStatusTableCoversEveryCode(t *testing.T) {
	d := declaredErrors(t, "..")
	table := api.StatusTable()
	for _, code := range d.sortedCodes() {
		status, ok := table[code]
		if !ok {
			t.Errorf("api's status table has no row for %q (declared at %s): it would be answered 500 internal", code, d.codes[code])
			continue
		}
		if http.StatusText(status) == "" || status < 400 {
			t.Errorf("api's status table maps %q to %d, not an HTTP error status", code, status)
		}
	}
	for code := range table {
		if _, ok := d.codes[code]; !ok {
			t.Errorf("api's status table has a row for %q, which the code base does not declare", code)
		}
	}
	for _, o := range d.overrides {
		if http.StatusText(o.status) == "" || o.status < 400 {
			t.Errorf("%s: WithStatus(%d, …) is not an HTTP error status", o.where, o.status)
		}
	}
}

// statusCode is one answer of the contract: an HTTP status and an error code.
type statusCode struct {
	status int
	code   string
}

// declarations is what the source walk found.
type declarations struct {
	codes     map[string]string // every declared code → where (one of its declarations)
	sentinels map[string]string // "pkg.ErrX" → its code, for package-level errors of errs.New (or a copy of one)
	overrides []override        // the api.WithStatus calls
}

// override is an api.WithStatus call: the code it answers with another status.
type override struct {
	status int
	code   string
	where  string
}

func (d declarations) sortedCodes() []string {
	out := make([]string, 0, len(d.codes))
	for c := range d.codes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// answers returns every (status, code) the service can answer: each
// declared code with its row of table, and each WithStatus override.
func (d declarations) answers(table map[string]int) map[statusCode]string {
	out := map[statusCode]string{}
	for code, where := range d.codes {
		if status, ok := table[code]; ok {
			out[statusCode{status, code}] = where
		}
	}
	for _, o := range d.overrides {
		out[statusCode{o.status, o.code}] = o.where
	}
	return out
}

// declaredErrors walks the module's non-test Go files under root and
// returns every error code declared with errs.New (or as an errs.Error
// literal with a Code), the package-level sentinels, and every
// api.WithStatus call with the code it concerns: its error argument names
// a sentinel (ErrX, pkg.ErrX, or a copy: ErrX.WithMessage(…)), or is a
// variable an enclosing `if errors.Is(err, ErrX)` tests. A code, status or
// error that the test cannot read fails the test: the table could not be
// checked.
func declaredErrors(t *testing.T, root string) declarations {
	t.Helper()
	d := declarations{codes: map[string]string{}, sentinels: map[string]string{}}
	type pendingVar struct {
		pkg, name string
		value     ast.Expr
	}
	type pendingCall struct {
		pkg    string
		call   *ast.CallExpr
		guards []ast.Expr // the errors.Is conditions of the enclosing ifs, innermost first
		where  string
	}
	var vars []pendingVar
	var calls []pendingCall
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if name := de.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
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
		pkg := f.Name.Name
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							vars = append(vars, pendingVar{pkg, name.Name, vs.Values[i]})
						}
					}
				}
			}
		}
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			switch n := n.(type) {
			case *ast.FuncDecl:
				// New's own body builds an Error from its parameters.
				if pkg == "errs" && n.Name.Name == "New" {
					stack = stack[:len(stack)-1]
					return false
				}
			case *ast.CallExpr:
				where := fset.Position(n.Pos()).String()
				switch {
				case isName(n.Fun, pkg, "errs", "New"):
					if len(n.Args) != 2 {
						t.Errorf("%s: errs.New with %d arguments", where, len(n.Args))
						return true
					}
					if code, ok := codeOf(t, where, n.Args[0]); ok {
						d.codes[code] = where
					}
				case isName(n.Fun, pkg, "api", "WithStatus"):
					var guards []ast.Expr
					for i := len(stack) - 2; i >= 0; i-- {
						if is, ok := stack[i].(*ast.IfStmt); ok {
							guards = append(guards, is.Cond)
						}
					}
					calls = append(calls, pendingCall{pkg, n, guards, where})
				}
			case *ast.CompositeLit:
				if isName(n.Type, pkg, "errs", "Error") {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if id, _ := kv.Key.(*ast.Ident); id != nil && id.Name == "Code" {
								where := fset.Position(n.Pos()).String()
								if code, ok := codeOf(t, where, kv.Value); ok {
									d.codes[code] = where
								}
							}
						}
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

	// The sentinels, resolved until nothing changes (a copy such as
	// ErrX.WithMessage(…) may name one declared in a later file).
	for changed := true; changed; {
		changed = false
		for _, v := range vars {
			key := v.pkg + "." + v.name
			if _, done := d.sentinels[key]; done {
				continue
			}
			if code, ok := d.resolve(v.pkg, v.value); ok {
				d.sentinels[key] = code
				changed = true
			}
		}
	}

	for _, c := range calls {
		if len(c.call.Args) != 2 {
			t.Errorf("%s: api.WithStatus with %d arguments", c.where, len(c.call.Args))
			continue
		}
		status := statusOf(c.call.Args[0])
		if status == 0 {
			t.Errorf("%s: api.WithStatus with a status that is not an http.Status constant or an integer", c.where)
			continue
		}
		code, ok := d.resolve(c.pkg, c.call.Args[1])
		if id, isIdent := c.call.Args[1].(*ast.Ident); !ok && isIdent {
			for _, g := range c.guards {
				if code, ok = d.guardCode(c.pkg, g, id.Name); ok {
					break
				}
			}
		}
		if !ok {
			t.Errorf("%s: api.WithStatus of an error that names no sentinel (nor is tested by an enclosing `if errors.Is(err, ErrX)`): the error table cannot be checked", c.where)
			continue
		}
		d.overrides = append(d.overrides, override{status, code, c.where})
	}
	return d
}

// resolve returns the code of e, an expression in package pkg: errs.New's
// literal, a sentinel (ErrX, pkg.ErrX), or a copy of one (WithMessage, Wrap,
// WithRetryAfter).
func (d declarations) resolve(pkg string, e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return d.resolve(pkg, e.X)
	case *ast.Ident:
		code, ok := d.sentinels[pkg+"."+e.Name]
		return code, ok
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			code, ok := d.sentinels[x.Name+"."+e.Sel.Name]
			return code, ok
		}
	case *ast.CallExpr:
		if isName(e.Fun, pkg, "errs", "New") && len(e.Args) == 2 {
			if lit, ok := e.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, err := strconv.Unquote(lit.Value)
				return code, err == nil
			}
			return "", false
		}
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok {
			switch sel.Sel.Name {
			case "WithMessage", "Wrap", "WithRetryAfter":
				return d.resolve(pkg, sel.X)
			}
		}
	}
	return "", false
}

// guardCode returns the code of ErrX when cond is errors.Is(name, ErrX).
func (d declarations) guardCode(pkg string, cond ast.Expr, name string) (string, bool) {
	call, ok := cond.(*ast.CallExpr)
	if !ok || len(call.Args) != 2 || !isSel(call.Fun, "errors", "Is") {
		return "", false
	}
	if id, ok := call.Args[0].(*ast.Ident); !ok || id.Name != name {
		return "", false
	}
	return d.resolve(pkg, call.Args[1])
}

// isName reports whether e names the symbol sym of package owner: owner.sym,
// or sym inside package owner.
func isName(e ast.Expr, pkg, owner, sym string) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return isSel(e, owner, sym)
	case *ast.Ident:
		return pkg == owner && e.Name == sym
	case *ast.StarExpr:
		return isName(e.X, pkg, owner, sym)
	}
	return false
}

func isSel(e ast.Expr, x, sel string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == x && s.Sel.Name == sel
}

// codeOf reads an error code, which must be a string literal.
func codeOf(t *testing.T, where string, e ast.Expr) (string, bool) {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Errorf("%s: an error code that is not a string literal: the error table cannot be checked", where)
		return "", false
	}
	code, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return "", false
	}
	return code, true
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
