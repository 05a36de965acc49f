// Command web is the front tier of moat's demo: an HTTP server that asks
// the api tier (examples/hello) for its answer and wraps it. Its container
// has only loopback: it reaches the api through a link, at API_ADDR
// (127.0.0.1:9000 by default), which the node carries to a ready api
// replica, over SSH when that replica runs on another node.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr, api := ":8080", "127.0.0.1:9000"
	if v := os.Getenv("ADDR"); v != "" {
		addr = v
	}
	if v := os.Getenv("API_ADDR"); v != "" {
		api = v
	}
	host, _ := os.Hostname()
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get("http://" + api + "/")
		if err != nil {
			http.Error(w, fmt.Sprintf("web %s: the api did not answer: %v", host, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("web %s: the api answered %s: %v", host, resp.Status, err), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "web %s -> %s\n", host, strings.TrimSpace(string(body)))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("listening", "addr", addr, "api", api, "host", host)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
	slog.Info("stopped")
}
