package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/gate"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/quantity"
)

func (a *app) gateCommand() *cobra.Command {
	var role, to, root, socket, maxUpload, configFile string
	cmd := &cobra.Command{
		Use:   "gate --as ROLE [--to TARGET:PORT]",
		Short: "The forced command of a node's authorized_keys (not for interactive use)",
		Long: `The forced command a node's authorized_keys pins a key to:

  restrict,command="/usr/local/bin/moat gate --as master" ssh-ed25519 AAAA...

It serves what SSH_ORIGINAL_COMMAND asks, if the role allows it. The
master's key (--as master): rpc (the node daemon's API), sftp (confined to
the upload inbox) or dial CONTAINER:PORT. The peer key other nodes fetch
images with (--as peer): blob sha256:HEX [OFFSET [SIZE]], one stored
blob or a range of it. A link key (--as link --to TARGET:PORT, one per
link, installed for the nodes running the link's source app): mux, a
yamux session whose streams each name a running container of app TARGET
on this node and reach its declared tcp port PORT, and nothing else.
Anything else is refused.`,
		Args: cobra.NoArgs,
		// Refusals are one line on stderr: no usage text, no logging on stdout.
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFileTolerant(cmd.Flags(), configFile); err != nil {
				return gateRefusal(a, err)
			}
			max, err := quantity.ParseBytes(maxUpload)
			if err != nil {
				return gateRefusal(a, fmt.Errorf("max-upload: %w", err))
			}
			req, err := gate.Parse(role, to, os.Getenv("SSH_ORIGINAL_COMMAND"))
			if err != nil {
				return gateRefusal(a, err)
			}
			layout := nodeapi.Layout{Root: root}
			cfg := gate.Config{Socket: socket, Inbox: layout.Inbox(), Blobs: image.BlobDir(layout.Images()), MaxUpload: max}
			if err := os.MkdirAll(cfg.Inbox, 0o700); err != nil {
				return gateRefusal(a, err)
			}
			if err := gate.Run(cmd.Context(), cfg, req, os.Stdin, os.Stdout); err != nil {
				return gateRefusal(a, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "as", "", "whose key this is: master, peer or link")
	f.StringVar(&to, "to", "", "link keys only: the app and port (TARGET:PORT) the key reaches")
	f.StringVar(&root, "root", nodeapi.StateDir, "node state directory, whose inbox and image blobs the gate serves")
	f.StringVar(&socket, "socket", nodeapi.Socket, "node daemon socket")
	f.StringVar(&maxUpload, "max-upload", "16Gi", "largest file one upload may write")
	f.StringVar(&configFile, "config", nodeapi.ConfigFile, "node settings file")
	return cmd
}

// gateRefusal prints the one line an SSH client sees and exits non-zero.
func gateRefusal(a *app, err error) error {
	fmt.Fprintf(a.stderr, "moat gate: %v\n", err)
	return exitError{1}
}
