package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) imageImportCommand() *cobra.Command {
	return importCommand("Put an image into the master's store: OCI layout (dir or tar) or docker save archive", a.stderr,
		func(ctx context.Context, r io.Reader, name string) ([]nodeapi.Image, error) {
			return a.importToMaster(ctx, r, name)
		}, a.printImages)
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
			rows := [][]string{{"NAME", "DIGEST", "SIZE", "SIGNED BY", "PRIVILEGES", "USED BY", "IMPORTED"}}
			for _, img := range imgs {
				rows = append(rows, []string{orDash(img.Name), shortDigest(img.Digest), quantity.FormatBytes(img.Size),
					signers(img.Signers), orDash(strings.Join(img.Privileges, ",")), orDash(strings.Join(img.UsedBy, ", ")), ago(img.Imported, time.Now())})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) imageInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect REF",
		Short: "Show an image of the master's store: what it runs, who signed it, the privileges it declares",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := a.masterClient().Image(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, img)
			}
			var b strings.Builder
			for _, kv := range [][2]string{
				{"name", orDash(img.Name)}, {"digest", img.Digest}, {"size", quantity.FormatBytes(img.Size)},
				{"layers", strconv.Itoa(img.Layers)}, {"architecture", orDash(img.Architecture)},
				{"entrypoint", orDash(strings.Join(img.Entrypoint, " "))}, {"cmd", orDash(strings.Join(img.Cmd, " "))},
				{"user", orDefault(img.User, "65534 (unset)")}, {"signed by", orDash(strings.Join(img.Signers, ", "))},
				{"privileges", orDefault(strings.Join(img.Privileges, ", "), "none beyond the strict defaults")},
				{"imported", img.Imported.Format(time.RFC3339)},
			} {
				fmt.Fprintf(&b, "%-13s %s\n", kv[0]+":", kv[1])
			}
			_, err = io.WriteString(a.stdout, b.String())
			return err
		},
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (a *app) imageRmCommand() *cobra.Command {
	return removeImagesCommand("rm", "Remove images from the master's store (refused while a revision uses them)", a.stdout,
		func(ctx context.Context, ref string) error { return a.masterClient().RemoveImage(ctx, ref) })
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
