package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs: every package says what it is for.
func TestPackageDocs(t *testing.T) {
	roots := []string{".", "../cmd", "../examples"}
	for _, root := range roots {
		filepath.WalkDir(root, func(dir string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || strings.Contains(dir, "testdata") {
				return err
			}
			pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
				return !strings.HasSuffix(fi.Name(), "_test.go")
			}, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Errorf("%s: %v", dir, err)
				return nil
			}
			for name, pkg := range pkgs {
				documented := false
				for _, f := range pkg.Files {
					documented = documented || f.Doc != nil
				}
				if !documented {
					t.Errorf("package %s (%s) has no doc comment", name, dir)
				}
			}
			return nil
		})
	}
}

// TestLayoutListsEveryPackage: the README's Layout names every directory
// that holds Go code, and docs/DESIGN.md's package table every package
// under internal/, so neither drifts from the tree.
func TestLayoutListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "## Layout")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	design, err := os.ReadFile("../docs/DESIGN.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(layout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	for _, root := range []string{".", "../cmd", "../examples", "../scripts"} {
		filepath.WalkDir(root, func(dir string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || strings.Contains(dir, "testdata") {
				return err
			}
			if gos, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(gos) == 0 {
				return nil
			}
			rel := strings.TrimPrefix(filepath.ToSlash(filepath.Join("internal", dir)), "internal/../")
			if !listed[rel] {
				t.Errorf("README.md's Layout does not list %s/", rel)
			}
			if pkg, ok := strings.CutPrefix(rel, "internal/"); ok && !strings.Contains(string(design), "| `"+pkg+"` |") {
				t.Errorf("docs/DESIGN.md's package table has no row for %s", pkg)
			}
			return nil
		})
	}
}
