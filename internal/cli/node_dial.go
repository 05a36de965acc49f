package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) nodeDialCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dial NODE CONTAINER:PORT",
		Short: "Pipe stdin and stdout to a container's declared port, through the node's gate",
		Long: `Connect stdin and stdout to a port a container declared, through the master
and its SSH connection to the node (the gate's dial): SSH authenticates and
encrypts the way to any TCP service, and the node opens no port for it.`,
		Example: `  printf 'GET / HTTP/1.0\r\n\r\n' | moat node dial n1 hello-ab3dx9:8080`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, port, err := splitTarget(args[1], "CONTAINER:PORT")
			if err != nil {
				return err
			}
			conn, err := a.masterClient().Dial(cmd.Context(), args[0], name, port)
			if err != nil {
				return err
			}
			return a.pipe(conn)
		},
	}
}

func (a *app) dialCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dial APP:PORT",
		Short: "Pipe stdin and stdout to a port of one of an app's ready replicas, over SSH",
		Long: `Connect stdin and stdout to a declared port of a ready replica of the app
(picked at random), through the master and the node's gate. Containers have
no network but loopback; SSH is the way in.`,
		Example: `  printf 'GET / HTTP/1.0\r\n\r\n' | moat dial hello:8080`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, port, err := splitTarget(args[0], "APP:PORT")
			if err != nil {
				return err
			}
			conn, err := a.masterClient().DialApp(cmd.Context(), app, port)
			if err != nil {
				return err
			}
			return a.pipe(conn)
		},
	}
}

// splitTarget reads NAME:PORT (want says which, for the message): a name
// and a port from 1 to 65535, or a usage error.
func splitTarget(s, want string) (string, int, error) {
	name, portStr, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return "", 0, usageError{fmt.Errorf("%q: want %s", s, want)}
	}
	port, err := tcpPort(portStr, 1)
	if err != nil {
		return "", 0, usageError{fmt.Errorf("%q: %v", s, err)}
	}
	return name, port, nil
}

// pipe copies stdin to conn (then half-closes) and conn to stdout.
func (a *app) pipe(conn io.ReadWriteCloser) error {
	defer conn.Close()
	go func() {
		io.Copy(conn, a.stdin)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	_, err := io.Copy(a.stdout.unbuffered(), conn)
	return err
}
