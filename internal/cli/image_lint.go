package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/image/lint"
)

func (a *app) imageLintCommand() *cobra.Command {
	var strict bool
	var root string
	cmd := &cobra.Command{
		Use:   "lint FILE|REF [--strict] [--root DIR]",
		Short: "List what makes an image non-minimal (shells, compilers...) or broken (missing libraries)",
		Long: `List the files that make an image more than a program and its data:
shells, package managers, compilers, interpreters, ssh and sshd, debuggers,
network tools. With --strict the command fails if anything is found.

It also resolves every ELF file's interpreter and shared libraries as the
loader in a container would (DT_RUNPATH or DT_RPATH with $ORIGIN, the
image's /etc/ld.so.cache, the default directories). One the image lacks is
an error, --strict or not: the program would fail to start with "no such
file or directory". Build such programs in with moat image build
--add-binary.

FILE is an OCI layout (tar or directory) or docker save archive; otherwise
the argument names an image in the store under --root: by default the
master's, $MOAT_MASTER_DIR or /var/lib/moat-master; a node's is
/var/lib/moat.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			findings, err := lintTarget(args[0], root)
			if err != nil {
				return err
			}
			if a.json {
				if findings == nil {
					findings = []lint.Finding{}
				}
				if err := printJSON(a.stdout, findings); err != nil {
					return err
				}
			} else if len(findings) == 0 {
				fmt.Fprintln(a.stdout, "minimal: no shells, package managers, compilers, interpreters, remote access, debuggers or network tools")
			} else {
				rows := [][]string{{"PATH", "WHAT", "KIND"}}
				for _, f := range findings {
					rows = append(rows, []string{f.Path, f.Name, string(f.Category)})
				}
				table(a.stdout, rows)
			}
			if err := brokenError(findings); err != nil {
				return err
			}
			if strict && len(findings) > 0 {
				return fmt.Errorf("lint: %d findings make the image non-minimal", len(findings))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit non-zero if anything is found")
	cmd.Flags().StringVar(&root, "root", "", "state directory whose images/ holds REF (default: the master's, $MOAT_MASTER_DIR or /var/lib/moat-master; a node's is /var/lib/moat)")
	return cmd
}

// brokenError names the files of findings that could not start, nil if
// there are none.
func brokenError(findings []lint.Finding) error {
	var broken []string
	for _, f := range findings {
		if !f.Fatal() {
			continue
		}
		what := f.Name
		if f.Category == lint.MissingInterpreter {
			what = "its interpreter " + f.Name
		}
		broken = append(broken, f.Path+" needs "+what)
	}
	if len(broken) == 0 {
		return nil
	}
	return fmt.Errorf("lint: the image lacks what its programs need to start (build them in with moat image build --add-binary): %s", strings.Join(broken, "; "))
}

func lintTarget(target, root string) ([]lint.Finding, error) {
	if root == "" {
		root = masterDir()
	}
	if _, err := os.Stat(target); err == nil {
		return lintFile(target)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	store, err := image.Open(filepath.Join(root, "images"), image.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("%q is neither a file nor an image in %s: %w", target, root, err)
	}
	img, err := store.Resolve(target)
	if err != nil {
		return nil, err
	}
	return lintLayers(img, store.OpenLayer)
}

func lintFile(path string) ([]lint.Finding, error) {
	f, _, err := openArchive(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ar, err := image.OpenArchive(f, os.TempDir())
	if err != nil {
		return nil, fmt.Errorf("lint %s: %w", path, err)
	}
	defer ar.Close()
	var all []lint.Finding
	for _, img := range ar.Images() {
		fs, err := lintLayers(img, ar.OpenLayer)
		if err != nil {
			return nil, err
		}
		all = append(all, fs...)
	}
	return all, nil
}

func lintLayers(img image.Image, open func(image.Layer) (io.ReadCloser, error)) ([]lint.Finding, error) {
	var readers []io.Reader
	for _, l := range img.Layers {
		rc, err := open(l)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		readers = append(readers, rc)
	}
	return lint.Layers(readers)
}
