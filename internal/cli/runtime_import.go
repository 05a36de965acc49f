package cli

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (r *runtimeCtx) importCommand() *cobra.Command {
	return importCommand("Import an OCI image layout (directory or tar) or a docker save archive", r.stderr,
		func(ctx context.Context, body io.Reader, name string) ([]nodeapi.Image, error) {
			return r.client().ImportImage(ctx, body, name)
		},
		func(imgs []nodeapi.Image) error {
			if r.json {
				return printJSON(r.stdout, imgs)
			}
			rows := [][]string{{"NAME", "DIGEST", "SIZE", "LAYERS"}}
			for _, img := range imgs {
				rows = append(rows, []string{orDash(img.Name), shortDigest(img.Digest), quantity.FormatBytes(img.Size), strconv.Itoa(img.Layers)})
			}
			return table(r.stdout, rows)
		})
}

// importCommand is `import [--name NAME] FILE|DIR|-` for a store, the
// master's or a node's: the archive streams to importTo with a progress
// bar, and print shows what came in.
func importCommand(short string, stderr io.Writer, importTo func(context.Context, io.Reader, string) ([]nodeapi.Image, error), print func([]nodeapi.Image) error) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import [--name NAME] FILE|DIR|-",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, size, err := openArchive(args[0])
			if err != nil {
				return err
			}
			defer body.Close()
			progress := newProgress(stderr, size, "import "+filepath.Base(args[0]))
			imgs, err := importTo(cmd.Context(), io.TeeReader(body, progress), name)
			progress.Finish()
			if err != nil {
				return err
			}
			return print(imgs)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name the image (the archive must hold one)")
	return cmd
}

// removeImagesCommand removes each image named, in order, and prints its
// name once it is gone.
func removeImagesCommand(use, short string, stdout io.Writer, remove func(context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " IMAGE...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				if err := remove(cmd.Context(), ref); err != nil {
					return err
				}
				fmt.Fprintln(stdout, ref)
			}
			return nil
		},
	}
}

// openArchive opens a tar file as is, or streams a directory (an OCI
// layout) as a tar. size is -1 when unknown.
func openArchive(path string) (io.ReadCloser, int64, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), -1, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		return f, st.Size(), err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, path)) }()
	return pr, -1, nil
}

func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
