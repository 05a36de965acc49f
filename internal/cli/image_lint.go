package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/image/lint"
)

func (a *app) imageLintCommand() *cobra.Command {
	var strict bool
	var root string
	cmd := &cobra.Command{
		Use:   "lint FILE|REF [--strict]",
		Short: "List what makes an image non-minimal: shells, package managers, compilers...",
		Long: `List the files that make an image more than a program and its data:
shells, package managers, compilers, interpreters, ssh and sshd, debuggers,
network tools. FILE is an OCI layout tar or docker save archive; otherwise
the argument names an image in the node's store (--root).
With --strict the command fails if anything is found.`,
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
			if strict && len(findings) > 0 {
				return fmt.Errorf("lint: %d findings make the image non-minimal", len(findings))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit non-zero if anything is found")
	cmd.Flags().StringVar(&root, "root", "/var/lib/moat", "node state directory, for image references")
	return cmd
}

func lintTarget(target, root string) ([]lint.Finding, error) {
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
	f, err := os.Open(path)
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
