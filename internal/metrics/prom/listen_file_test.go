package prom

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestListenKeepsAFile: a stale socket is replaced, but a path that
// names anything else (a mistyped --prometheus-listen pointing at the
// master's database, a directory) is refused and left as it was.
func TestListenKeepsAFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "state.db")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:" + file); err == nil {
		ln.Close()
		t.Errorf("listened on a regular file's path")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("the file after Listen: %q %v", b, err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:" + sub); err == nil {
		ln.Close()
		t.Errorf("listened on a directory's path")
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("the directory after Listen: %v", err)
	}
}

// TestMetricsOnlyHost: the listener answers to an IP address or
// localhost, not to another name (DNS rebinding: a page of evil.example,
// its name pointed at 127.0.0.1, reading the metrics through a browser
// on the master's machine).
func TestMetricsOnlyHost(t *testing.T) {
	h := MetricsOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "moat_node_up 1\n") }))
	for host, want := range map[string]int{
		"127.0.0.1:9464": 200, "[::1]:9464": 200, "localhost:9464": 200, "LOCALHOST": 200, "10.0.0.5:9464": 200, "": 200,
		"evil.example:9464": 421, "evil.example": 421, "127.0.0.1.nip.io:9464": 421, "localhost.evil.example": 421,
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d; want %d", host, w.Code, want)
		}
	}
	// A unix socket's clients are local processes, never a browser's
	// page: any Host.
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Host = "x"
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/moat/prometheus.sock", Net: "unix"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("Host x on a unix socket: %d; want 200", w.Code)
	}
}
