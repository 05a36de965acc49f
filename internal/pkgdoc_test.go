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
