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

// Serve serves handler on the unix socket (see ListenUnix) until ctx
// ends, then shuts down gracefully. While it serves, pidFile (beside the
// socket) holds this process's pid, so enrolment and dev clusters can
// find a daemon no service manager runs. serving is called once the
// socket listens.
func Serve(ctx context.Context, socket, pidFile string, handler http.Handler, log *slog.Logger, serving func()) error {
	ln, err := ListenUnix(socket)
	if err != nil {
		return err
	}
	pidPath := filepath.Join(filepath.Dir(socket), pidFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		ln.Close()
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidPath)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	serving()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return nil
}
