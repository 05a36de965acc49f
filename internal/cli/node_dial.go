package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) nodeDialCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dial NODE CONTAINER:PORT",
		Short: "Pipe stdin and stdout to a container's declared port, through the node's gate",
		Long: `Connect stdin and stdout to a port a container declared, over the master's
SSH connection to the node (the gate's dial): SSH authenticates and encrypts
the way to any TCP service, and the node opens no port for it.`,
		Example: `  printf 'GET / HTTP/1.0\r\n\r\n' | moat node dial n1 hello:8080`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, portStr, ok := strings.Cut(args[1], ":")
			port, err := strconv.Atoi(portStr)
			if !ok || err != nil {
				return usageError{fmt.Errorf("%q: want CONTAINER:PORT", args[1])}
			}
			conn, err := a.masterClient().Dial(cmd.Context(), args[0], name, port)
			if err != nil {
				return err
			}
			defer conn.Close()
			go func() {
				io.Copy(conn, a.stdin)
				if cw, ok := conn.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}()
			_, err = io.Copy(a.stdout, conn)
			return err
		},
	}
}
