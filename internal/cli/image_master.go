package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) imageImportCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import [--name NAME] FILE|DIR|-",
		Short: "Put an image into the master's store: OCI layout (dir or tar) or docker save archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, size, err := openArchive(args[0])
			if err != nil {
				return err
			}
			defer body.Close()
			progress := newProgress(a.stderr, size, "import "+filepath.Base(args[0]))
			imgs, err := a.masterClient().ImportImage(cmd.Context(), io.TeeReader(body, progress), name)
			progress.Finish()
			if err != nil {
				return err
			}
			return a.printImages(imgs)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name the image (the archive must hold one)")
	return cmd
}

func (a *app) printImages(imgs []nodeapi.Image) error {
	if a.json {
		return printJSON(a.stdout, imgs)
	}
	rows := [][]string{{"NAME", "DIGEST", "SIZE", "LAYERS", "SIGNED BY", "IMPORTED"}}
	for _, img := range imgs {
		rows = append(rows, []string{orDash(img.Name), shortDigest(img.Digest), quantity.FormatBytes(img.Size), strconv.Itoa(img.Layers),
			signers(img.Signers), ago(img.Imported, time.Now())})
	}
	return table(a.stdout, rows)
}

func (a *app) imageLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the images in the master's store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			imgs, err := a.masterClient().Images(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, imgs)
			}
			rows := [][]string{{"NAME", "DIGEST", "SIZE", "SIGNED BY", "USED BY", "IMPORTED"}}
			for _, img := range imgs {
				rows = append(rows, []string{orDash(img.Name), shortDigest(img.Digest), quantity.FormatBytes(img.Size),
					signers(img.Signers), orDash(strings.Join(img.UsedBy, ", ")), ago(img.Imported, time.Now())})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) imageRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images from the master's store (refused while a revision uses them)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				if err := a.masterClient().RemoveImage(cmd.Context(), ref); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, ref)
			}
			return nil
		},
	}
}

// signers shows key fingerprints short: SHA256:abcdefgh…, comma-separated.
func signers(fps []string) string {
	if len(fps) == 0 {
		return "-"
	}
	out := make([]string, len(fps))
	for i, fp := range fps {
		if len(fp) > 15 {
			fp = fp[:15] + "…"
		}
		out[i] = fp
	}
	return strings.Join(out, ",")
}
