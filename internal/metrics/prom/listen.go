package prom

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// ParseListen checks where the master's own Prometheus listener goes:
// "127.0.0.1:PORT" or "[::1]:PORT" (loopback only: the metrics name every
// node, app and tenant, and have no authentication of their own), or
// "unix:/path". It returns the network and the address.
func ParseListen(s string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("prometheus-listen %q: want unix:/absolute/path: %w", s, errs.ErrInvalid)
		}
		return "unix", filepath.Clean(path), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("prometheus-listen %q: want 127.0.0.1:PORT or unix:/path: %v: %w", s, err, errs.ErrInvalid)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", "", fmt.Errorf("prometheus-listen %q: %q is not a loopback address: the endpoint has no authentication, so it listens on loopback (127.0.0.1:PORT) or a unix socket (unix:/path) only; remote Prometheus servers reach it over SSH (ssh -L): %w", s, host, errs.ErrInvalid)
	}
	if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
		return "", "", fmt.Errorf("prometheus-listen %q: bad port %q: %w", s, port, errs.ErrInvalid)
	}
	return "tcp", s, nil
}

// Listen opens the listener ParseListen describes. A unix socket is
// made mode 0660 (its owner's group may scrape it; the directory it is
// in decides who reaches it), replacing a stale one.
func Listen(s string) (net.Listener, error) {
	network, addr, err := ParseListen(s)
	if err != nil {
		return nil, err
	}
	if network == "tcp" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("prometheus listener: %w", err)
		}
		return ln, nil
	}
	if err := os.MkdirAll(filepath.Dir(addr), 0o750); err != nil {
		return nil, fmt.Errorf("prometheus listener: %w", err)
	}
	// Only a socket is replaced: a mistyped path naming a file (the
	// master's database) is refused, not removed.
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("prometheus listener: %s exists and is not a socket: %w", addr, errs.ErrInvalid)
		}
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("prometheus listener: %w", err)
		}
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("prometheus listener: %w", err)
	}
	if err := os.Chmod(addr, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("prometheus listener: %w", err)
	}
	return ln, nil
}

// MetricsOnly serves h at GET /metrics and nothing else (404), on TCP to
// requests whose Host is an IP address or localhost: a web page a browser
// on this machine loaded from a name its owner then points at 127.0.0.1
// (DNS rebinding) sends that name, and is refused (421), so it cannot
// read every tenant's names through the browser.
func MetricsOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); (!ok || a.Network() != "unix") && !localHost(r.Host) {
			http.Error(w, "this endpoint answers only to an IP address or localhost", http.StatusMisdirectedRequest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// localHost says whether a Host header names an IP address or localhost
// (with or without a port), or nothing (a unix socket's client may send
// none). Pure.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return host == "" || strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}
