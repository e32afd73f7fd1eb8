package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// owners is the house's table → owning package map: only the owner's
// production code names the table in SQL or passes the table's model to
// GORM. storage creates every table (the migrations) and is exempt; a new
// table needs an owner here (TestEveryTableHasAnOwner).
var owners = map[string]string{
	"users":              "users",
	"wallets":            "users",
	"sessions":           "auth",
	"partners":           "partners",
	"partner_identities": "partners",
	"points_entries":     "points",
	"activity_events":    "activity",
	"mail_outbox":        "mail",
	"webhook_endpoints":  "webhooks",
	"webhook_deliveries": "webhooks",
	"signing_keys":       "tokens",
}

// exempt are the directories whose code may name any table: the schema's
// owner.
var exempt = map[string]bool{"storage": true}

// root is the module's root, two levels up from this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", dir, err)
	}
	return dir
}

type goFile struct {
	rel  string // slash path from the module root
	pkg  string // its directory's first element: the owning package's name for the top-level ones
	file *ast.File
	fset *token.FileSet
}

// productionFiles parses the module's non-test Go files, leaving out
// tools/ (a module of its own) and this package.
func productionFiles(t *testing.T) []goFile {
	t.Helper()
	base := root(t)
	var out []goFile
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "tools" || rel == "internal/archtest" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		out = append(out, goFile{rel: rel, pkg: strings.Split(rel, "/")[0], file: f, fset: fset})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d Go files under %s: the walk is wrong", len(out), base)
	}
	return out
}

// tableRef finds a table named as SQL does: after FROM, JOIN, INTO,
// UPDATE, TABLE or DELETE FROM, or as a gorm Table("…") argument.
var tableRef = regexp.MustCompile(`(?i)\b(?:FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES)\s+([a-z_]+)\b`)

func TestOnlyTheOwnerNamesItsTable(t *testing.T) {
	for _, f := range productionFiles(t) {
		if exempt[f.pkg] {
			continue
		}
		ast.Inspect(f.file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			names := []string{}
			for _, m := range tableRef.FindAllStringSubmatch(s, -1) {
				names = append(names, strings.ToLower(m[1]))
			}
			for _, name := range names {
				if owner, ok := owners[name]; ok && owner != f.pkg {
					t.Errorf("%s: names table %s, which %s owns: %q", f.fset.Position(lit.Pos()), name, owner, s)
				}
			}
			return true
		})
	}
}

// gormModelCalls are the *gorm.DB methods that take a model (its table).
var gormModelCalls = map[string]bool{"Model": true, "Create": true, "Delete": true, "Save": true,
	"Updates": true, "Update": true, "Find": true, "Take": true, "First": true, "Last": true}

// modelTables are the GORM models of each owner, by package and type.
var modelTables = map[string]string{
	"users.User": "users", "users.Wallet": "users",
	"auth.Session":     "auth",
	"partners.Partner": "partners", "partners.Identity": "partners",
	"points.Entry":      "points",
	"activity.Row":      "activity",
	"webhooks.Endpoint": "webhooks", "webhooks.Delivery": "webhooks",
}

// TestOnlyTheOwnerUsesItsModel: a package passing another's model to GORM
// (tx.Model(&users.User{})) writes or reads the other's table.
func TestOnlyTheOwnerUsesItsModel(t *testing.T) {
	for _, f := range productionFiles(t) {
		if exempt[f.pkg] {
			continue
		}
		ast.Inspect(f.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if sel.Sel.Name == "Table" && len(call.Args) > 0 { // gorm's Table("partner_identities AS pi")
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					if fields := strings.Fields(s); len(fields) > 0 {
						if owner, ok := owners[fields[0]]; ok && owner != f.pkg {
							t.Errorf("%s: Table(%q) names a table %s owns", f.fset.Position(call.Pos()), s, owner)
						}
					}
				}
			}
			if !gormModelCalls[sel.Sel.Name] {
				return true
			}
			for _, arg := range call.Args {
				if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.AND {
					arg = u.X
				}
				cl, ok := arg.(*ast.CompositeLit)
				if !ok {
					continue
				}
				ts, ok := cl.Type.(*ast.SelectorExpr)
				if !ok {
					continue
				}
				pkg, ok := ts.X.(*ast.Ident)
				if !ok {
					continue
				}
				if owner, ok := modelTables[pkg.Name+"."+ts.Sel.Name]; ok && owner != f.pkg {
					t.Errorf("%s: %s(&%s.%s{}) uses the model of a table %s owns", f.fset.Position(call.Pos()), sel.Sel.Name, pkg.Name, ts.Sel.Name, owner)
				}
			}
			return true
		})
	}
}

// migrations is where the schema is created.
const migrations = "storage/migrate.go"

func TestEveryTableHasAnOwner(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), migrations))
	if err != nil {
		t.Fatal(err)
	}
	created := regexp.MustCompile(`CREATE TABLE ([a-z_]+)`).FindAllStringSubmatch(string(b), -1)
	if len(created) < len(owners) {
		t.Fatalf("%s creates %d tables, the owner map names %d", migrations, len(created), len(owners))
	}
	for _, m := range created {
		if _, ok := owners[m[1]]; !ok {
			t.Errorf("table %s (created in %s) has no owning package in owners", m[1], migrations)
		}
	}
}

// drivers are the import paths of database and store drivers.
var drivers = []string{"github.com/jackc/pgx", "gorm.io/driver", "github.com/glebarez/sqlite",
	"github.com/redis/go-redis", "modernc.org/sqlite"}

// driverImporters are the packages that may import a driver: the store
// boundaries (storage for the database, kv and cache for Redis) and the
// wiring (cmd, which logs the Redis client's events).
var driverImporters = map[string]bool{"storage": true, "kv": true, "cache": true, "cmd": true}

func TestOnlyTheStoreBoundaryImportsADriver(t *testing.T) {
	var bad []string
	for _, f := range productionFiles(t) {
		for _, imp := range f.file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, d := range drivers {
				if strings.HasPrefix(path, d) && !driverImporters[f.pkg] {
					bad = append(bad, f.rel+" imports "+path)
				}
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}
