package lint_test

import (
	"fmt"
	"io/fs"

	"github.com/moatcloud/moat/internal/image/lint"
)

func ExampleClassify() {
	files := []struct {
		path string
		mode fs.FileMode
	}{
		{"/bin/sh", fs.ModeSymlink | 0o777},
		{"/usr/bin/python3.11", 0o755},
		{"/usr/share/doc/python3/changelog", 0o644},
		{"/usr/local/bin/node_exporter", 0o755},
	}
	for _, f := range files {
		if finding, ok := lint.Classify(f.path, f.mode); ok {
			fmt.Printf("%s\t%s\t%s\n", finding.Category, finding.Name, finding.Path)
		}
	}
	// Output:
	// shell	sh	/bin/sh
	// interpreter	python3.11	/usr/bin/python3.11
}
