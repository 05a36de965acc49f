package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ListenUnix listens on a unix socket only root can use: the node and
// master APIs can start any container, so they are root's, as docker's and
// containerd's are. There is no TCP listener anywhere.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// Connecting needs write permission on the socket; with any sane umask
	// only root has it from the start, and the chmod makes it explicit.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// Endpoint is one unix socket and what is served on it.
type Endpoint struct {
	Socket  string
	Handler http.Handler
	// Listener, when set, is served instead of ListenUnix(Socket): one
	// that checks who connects (the master's api socket).
	Listener net.Listener
	// ConnContext, when set, is the server's: what a connection's
	// requests know of it.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
}

// Serve serves each endpoint on its unix socket (see ListenUnix) until
// ctx ends, then shuts down gracefully. While it serves, pidFile (beside
// the first socket) holds this process's pid, so enrolment and dev
// clusters can find a daemon no service manager runs. serving is called
// once every socket listens.
func Serve(ctx context.Context, pidFile string, log *slog.Logger, serving func(), endpoints ...Endpoint) error {
	var servers []*http.Server
	errc := make(chan error, len(endpoints))
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			srv.Shutdown(shutdown)
		}
	}()
	for _, e := range endpoints {
		ln := e.Listener
		if ln == nil {
			var err error
			if ln, err = ListenUnix(e.Socket); err != nil {
				return err
			}
		}
		srv := &http.Server{Handler: e.Handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			Protocols: Protocols(), ConnContext: e.ConnContext}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
	}
	pidPath := filepath.Join(filepath.Dir(endpoints[0].Socket), pidFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidPath)
	serving()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return nil
}

// Protocols are what moat's servers speak: HTTP/1.1 (curl, upgrades for
// debug and dial) and HTTP/2 without TLS, which the master uses over one
// SSH session per node (the unix socket and SSH are the security).
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
