package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/pipe"
)

// tunnelDialTimeout bounds opening one tunnelled connection (the master
// trying replicas in turn); the connection itself has no time limit.
const tunnelDialTimeout = 30 * time.Second

func (a *app) tunnelCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "tunnel APP:PORT [LOCALPORT]",
		Short: "Listen on this machine and carry each connection to a ready replica of an app, over SSH",
		Long: `Listen on 127.0.0.1:LOCALPORT (a free port when LOCALPORT is 0 or left out)
and carry each accepted connection to a declared port of a ready replica of
the app, the way moat dial does: through the master, which picks a replica
on a node that is up and tries another when one cannot be reached, and over
the operator's own ssh for a remote context. Every connection is dialled on
its own, so the tunnel keeps working while replicas come and go. A
connection that cannot be opened is logged and closed; the tunnel goes on.
It runs until interrupted (Ctrl-C, SIGTERM).`,
		Example: `  moat tunnel hello:8080 8000            # curl http://127.0.0.1:8000/
  moat tunnel db:5432                    # prints the port it picked
  moat tunnel hello:8080 --listen [::1]:0`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTunnel(args, listen)
			if err != nil {
				return err
			}
			return a.runTunnel(cmd.Context(), t)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1", "address to listen on: a host, or HOST:PORT instead of LOCALPORT")
	return cmd
}

// tunnel is what moat tunnel was asked for.
type tunnel struct {
	App    string
	Port   int
	Listen string // HOST:PORT; port 0 picks a free one
}

// parseTunnel reads moat tunnel's arguments: APP:PORT, an optional local
// port, and --listen, a host or HOST:PORT (then without LOCALPORT). Every
// mistake is a usage error.
func parseTunnel(args []string, listen string) (tunnel, error) {
	bad := func(format string, v ...any) (tunnel, error) {
		return tunnel{}, usageError{fmt.Errorf(format, v...)}
	}
	if len(args) < 1 || len(args) > 2 {
		return bad("want APP:PORT [LOCALPORT], got %d arguments", len(args))
	}
	app, port, err := splitTarget(args[0], "APP:PORT")
	if err != nil {
		return tunnel{}, err
	}
	if listen == "" {
		return bad("--listen is empty: want a host or HOST:PORT")
	}
	host, localPort := listen, "0"
	if h, ok := strings.CutPrefix(listen, "["); ok {
		host = strings.TrimSuffix(h, "]") // [::1] is ::1; [::1 is refused below
	}
	if h, p, err := net.SplitHostPort(listen); err == nil {
		if len(args) == 2 {
			return bad("--listen %q has a port and so does LOCALPORT %q: give one", listen, args[1])
		}
		host, localPort = h, p
	}
	if strings.ContainsAny(host, "[]") || strings.HasPrefix(listen, "[") != strings.Contains(listen, "]") ||
		(strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return bad("--listen %q: want a host or HOST:PORT", listen)
	}
	if len(args) == 2 {
		localPort = args[1]
	}
	lport, err := tcpPort(localPort, 0)
	if err != nil {
		return bad("local port %q: %v", localPort, err)
	}
	return tunnel{App: app, Port: port, Listen: net.JoinHostPort(host, strconv.Itoa(lport))}, nil
}

// tcpPort reads a TCP port, at least lowest (0 where it means "any").
func tcpPort(s string, lowest int) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < lowest || p > 65535 {
		return 0, fmt.Errorf("want a port from %d to 65535", lowest)
	}
	return p, nil
}

// tunnelListening is what moat tunnel --json prints once it listens.
type tunnelListening struct {
	Listen string `json:"listen"`
	App    string `json:"app"`
	Port   int    `json:"port"`
}

func (a *app) runTunnel(ctx context.Context, t tunnel) error {
	client := a.masterClient()
	// An unknown app, or a master that cannot be reached, fails now rather
	// than on every connection.
	if _, err := client.Revisions(ctx, t.App); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", t.Listen)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	out := a.stdout.unbuffered() // the line goes out now: a script waits for it
	addr := ln.Addr().String()
	if a.json {
		err = printJSONLine(out, tunnelListening{Listen: addr, App: t.App, Port: t.Port})
	} else {
		_, err = fmt.Fprintf(out, "tunnel %s → %s:%d\n", addr, t.App, t.Port)
	}
	if err != nil {
		ln.Close()
		return err
	}
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		ctx, cancel := context.WithTimeout(ctx, tunnelDialTimeout)
		defer cancel() // the upgraded connection outlives its request
		return client.DialApp(ctx, t.App, t.Port)
	}
	return serveTunnel(ctx, ln, dial, slog.Default().With("tunnel", fmt.Sprintf("%s:%d", t.App, t.Port)))
}

// serveTunnel accepts connections until ctx ends and carries each to a
// connection dial opens; then it closes the listener and the connections
// still open, and returns once they are all done.
func serveTunnel(ctx context.Context, ln net.Listener, dial func(context.Context) (io.ReadWriteCloser, error), log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors, say: wait a little and go on, as
			// net/http's server does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("tunnel accept", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			carry(ctx, conn, dial, log)
		}()
	}
}

// carry opens a connection to a replica for one accepted connection and
// copies both ways. A side that ends its input (EOF) passes a half-close
// on; the connection ends when both directions have ended, at the first
// error, or when ctx ends.
func carry(ctx context.Context, client net.Conn, dial func(context.Context) (io.ReadWriteCloser, error), log *slog.Logger) {
	defer client.Close()
	far, err := dial(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("tunnel connection failed", "client", client.RemoteAddr().String(), "err", err)
		}
		return
	}
	// Join closes both when both directions have ended or one fails;
	// ctx's end closes them sooner. Where the end cannot be passed on, the
	// other direction goes on until it ends, as with moat dial.
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		far.Close()
	})
	defer stop()
	pipe.Join(client, far)
}
