package zos_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs keeps ARCHITECTURE.md's rule true: every package has a
// doc.go, it is the only file with a package comment, and that comment says
// what the package may import.
func TestPackageDocs(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("found no packages: is the test running from the module root?")
	}
	for dir := range dirs {
		checkPackageDoc(t, dir)
	}
}

func checkPackageDoc(t *testing.T, dir string) {
	t.Helper()
	docPath := filepath.Join(dir, "doc.go")
	if _, err := os.Stat(docPath); err != nil {
		t.Errorf("%s: no doc.go saying what the package owns and may import", dir)
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		switch {
		case name == "doc.go" && f.Doc == nil:
			t.Errorf("%s: doc.go has no package comment", dir)
		case name == "doc.go" && !strings.Contains(f.Doc.Text(), "May import"):
			t.Errorf("%s: package comment does not say what the package may import (\"May import: ...\")", dir)
		case name != "doc.go" && f.Doc != nil:
			t.Errorf("%s: package comment outside doc.go; keep one package doc per package", path)
		}
	}
}
