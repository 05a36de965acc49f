package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) imageGCCommand() *cobra.Command {
	var dryRun bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Remove images nothing needs, on the master and every node",
		Long: `Remove the images nothing needs from the master's store and from every
node that is up, with their blobs and unpacked layers. Kept: each app's
rollback window (the images of its last --keep-revisions distinct
revisions, 5 by default, and its stable revision), what any replica runs,
what a node's containers use, and anything imported or pulled in the last
--grace (10 minutes). Masters and nodes also collect by themselves when their disk
passes --gc-threshold.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := masterapi.GCRequest{DryRun: dryRun}
			if cmd.Flags().Changed("grace") {
				g := nodeapi.Duration(grace)
				req.Grace = &g
			}
			reports, err := a.masterClient().GC(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, reports)
			}
			verb := "FREED"
			if dryRun {
				verb = "WOULD FREE"
			}
			rows := [][]string{{"WHERE", "IMAGES", "BLOBS", "LAYERS", verb, "NOTE"}}
			failed := 0
			for _, r := range reports {
				note := strings.Join(r.Images, ", ")
				if r.Error != "" {
					note, failed = "error: "+r.Error, failed+1
				}
				rows = append(rows, []string{r.Where, strconv.Itoa(len(r.Images)), strconv.Itoa(r.Blobs), strconv.Itoa(r.Layers), quantity.FormatBytes(r.Bytes), note})
			}
			if err := table(a.stdout, rows); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("image gc failed on %d nodes", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would go, remove nothing")
	cmd.Flags().DurationVar(&grace, "grace", 10*time.Minute, "keep images imported or pulled more recently than this")
	return cmd
}
