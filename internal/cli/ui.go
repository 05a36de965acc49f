package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/ui"
)

func (a *app) uiCommand() *cobra.Command {
	var listen string
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "ui [--listen 127.0.0.1:0] [--no-open]",
		Short: "Serve the dashboard on this machine's loopback and print its URL",
		Long: `Serve a read-only dashboard of the cluster on a loopback address of this
machine: nodes with their CPU, memory and disk, apps with their replicas,
revisions and log tail, alerts, events, and MRTG-style graphs (day, week,
month, year). It reads the master's API as you: it shows what you may see,
through the same socket or, for a remote context, the same SSH connection
as every other command.

Any local user can reach a loopback port, so the URL carries a random
token; the browser keeps it in a cookie. The page asks for nothing outside
the binary and runs no script. It runs until interrupted (Ctrl-C).`,
		Example: `  moat ui                       # opens the browser when it can
  moat ui --no-open --listen 127.0.0.1:8900`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runUI(cmd.Context(), listen, !noOpen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "loopback address to listen on (port 0: a free one)")
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "print the URL, do not start a browser")
	return cmd
}

func (a *app) runUI(ctx context.Context, listen string, open bool) error {
	if err := loopbackOnly(listen); err != nil {
		return err
	}
	client := a.masterClient()
	if err := client.Ping(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	addr := ln.Addr().String()
	token := ui.NewToken()
	url := "http://" + addr + "/?token=" + token
	log := slog.Default().With("ui", addr)
	srv := &http.Server{Handler: ui.Guard(token, addr, ui.New(client, log)), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	out := a.stdout.unbuffered() // the URL goes out now: a script waits for it
	if a.json {
		err = printJSONLine(out, map[string]string{"url": url, "listen": addr})
	} else {
		_, err = fmt.Fprintf(out, "dashboard: %s\n", url)
	}
	if err != nil {
		ln.Close()
		return err
	}
	if open {
		if dir := openBrowser(url, log); dir != "" {
			defer os.RemoveAll(dir)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ui: %w", err)
	}
	return nil
}

// loopbackOnly refuses an address other than a loopback IP: the
// dashboard is for this machine alone.
func loopbackOnly(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return errs.Invalid("--listen", "%q: want HOST:PORT (%v)", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errs.Invalid("--listen", "%q is not a loopback address: the dashboard listens on 127.0.0.1 or ::1 only", host)
	}
	return nil
}

// openBrowser starts the desktop's browser on the dashboard when there is
// one. The URL (and its token) goes through a file only this user can
// read, as Jupyter does, never on a command line that ps shows to everyone;
// it returns the file's directory, removed when moat ui ends.
func openBrowser(url string, log *slog.Logger) string {
	opener, err := exec.LookPath("xdg-open")
	if err != nil {
		if opener, err = exec.LookPath("open"); err != nil {
			return ""
		}
	}
	dir, err := os.MkdirTemp("", "moat-ui-")
	if err != nil {
		return ""
	}
	page := filepath.Join(dir, "open.html")
	html := `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=` + url + `"><a href="` + url + `">moat dashboard</a>`
	if err := os.WriteFile(page, []byte(html), 0o600); err == nil {
		cmd := exec.Command(opener, page)
		if err := cmd.Start(); err != nil {
			log.Debug("open browser", "err", err)
		} else {
			go cmd.Wait()
		}
	}
	return dir
}
