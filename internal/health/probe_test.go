package health

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	web := serve(t, mux)
	closed := closedPort(t)
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

	tests := []struct {
		name    string
		check   Check
		wantErr string // exact message; empty means success
	}{
		{"http 200", Check{HTTPPath: "/ok", Port: web}, ""},
		{"http 503", Check{HTTPPath: "/fail", Port: web}, "GET /fail: 503 Service Unavailable"},
		{"http 404", Check{HTTPPath: "/nowhere", Port: web}, "GET /nowhere: 404 Not Found"},
		{"http redirect", Check{HTTPPath: "/moved", Port: web}, ""},
		{"http query", Check{HTTPPath: "/ok?verbose=1", Port: web}, ""},
		{"http closed port", Check{HTTPPath: "/ok", Port: closed}, "connect " + addr(closed) + ": connection refused"},
		{"tcp open", Check{Port: web}, ""},
		{"tcp closed", Check{Port: closed}, "connect " + addr(closed) + ": connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Probe(t.Context(), os.Getpid(), tt.check)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Probe: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Probe succeeded, want %q", tt.wantErr)
			case err != nil && err.Error() != tt.wantErr:
				t.Fatalf("Probe: %q, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	err := Probe(t.Context(), os.Getpid(), Check{HTTPPath: "/", Port: silentPort(t), Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Probe: %v, want a timeout", err)
	}
}

func TestProbeRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r }))
	if err := Probe(t.Context(), os.Getpid(), Check{HTTPPath: "/healthz?x=1", Port: port}); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	r := <-got
	for _, c := range []struct{ name, got, want string }{
		{"method", r.Method, "GET"},
		{"request URI", r.RequestURI, "/healthz?x=1"},
		{"proto", r.Proto, "HTTP/1.1"},
		{"host", r.Host, "localhost"},
		{"user agent", r.UserAgent(), "moat-health"},
		{"connection", strconv.FormatBool(r.Close), "true"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestProbeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Probe(ctx, os.Getpid(), Check{HTTPPath: "/", Port: silentPort(t)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Probe: %v, want context.Canceled", err)
	}
}

func TestProbeInvalid(t *testing.T) {
	for _, c := range []Check{{Port: 0}, {Port: 70000}, {Port: 80, HTTPPath: "healthz"}} {
		if err := Probe(t.Context(), os.Getpid(), c); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Probe(%+v) = %v, want ErrInvalid", c, err)
		}
	}
}

func TestProbeNoProcess(t *testing.T) {
	err := Probe(t.Context(), deadPid(t), Check{Port: 80})
	if !errors.Is(err, ErrExited) {
		t.Fatalf("Probe: %v, want ErrExited", err)
	}
}
