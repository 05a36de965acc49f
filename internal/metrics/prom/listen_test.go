package prom

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, network, addr string // network "": refused
	}{
		{"127.0.0.1:9464", "tcp", "127.0.0.1:9464"},
		{"127.0.0.2:9464", "tcp", "127.0.0.2:9464"}, // all of 127/8 is loopback
		{"[::1]:9464", "tcp", "[::1]:9464"},
		{"unix:/run/moat/prometheus.sock", "unix", "/run/moat/prometheus.sock"},
		{"unix:/run/moat/../moat/p.sock", "unix", "/run/moat/p.sock"},
		{"0.0.0.0:9464", "", ""},
		{"[::]:9464", "", ""},
		{":9464", "", ""},
		{"10.0.0.1:9464", "", ""},
		{"192.168.1.1:9464", "", ""},
		{"[::ffff:10.0.0.1]:9464", "", ""},
		{"localhost:9464", "", ""}, // a name could resolve anywhere
		{"example.com:9464", "", ""},
		{"127.0.0.1", "", ""},
		{"127.0.0.1:", "", ""},
		{"127.0.0.1:http-alt-nope", "", ""},
		{"unix:relative.sock", "", ""},
		{"unix:", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		network, addr, err := ParseListen(tt.in)
		if tt.network == "" {
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "prometheus-listen") {
				t.Errorf("ParseListen(%q) = %s %s, %v; want refused, naming the setting", tt.in, network, addr, err)
			}
			continue
		}
		if err != nil || network != tt.network || addr != tt.addr {
			t.Errorf("ParseListen(%q) = %s %s, %v; want %s %s", tt.in, network, addr, err, tt.network, tt.addr)
		}
	}
}

// TestListen: on loopback TCP and on a unix socket (mode 0660, a stale
// one replaced), the listener serves /metrics and nothing else.
func TestListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "prometheus.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale socket: a listener gone without removing its file.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	for _, spec := range []string{"127.0.0.1:0", "unix:" + sock} {
		ln, err := Listen(spec)
		if err != nil {
			t.Fatalf("Listen(%s): %v", spec, err)
		}
		srv := &http.Server{Handler: MetricsOnly(Handler(func(context.Context) (Snapshot, error) { return snapshot(), nil }, nil))}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		network, addr := "tcp", ln.Addr().String()
		if strings.HasPrefix(spec, "unix:") {
			network, addr = "unix", sock
			fi, err := os.Stat(sock)
			if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
				t.Errorf("%s: %v %v; want a socket of mode 0660", sock, fi, err)
			}
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
		for path, want := range map[string]int{"/metrics": 200, "/": 404, "/v1/prometheus": 404, "/metrics/x": 404, "/debug/pprof/": 404} {
			resp, err := c.Get("http://localhost" + path)
			if err != nil {
				t.Fatalf("%s %s: %v", spec, path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s GET %s: %d; want %d", spec, path, resp.StatusCode, want)
			}
			if want == 200 && !strings.Contains(string(body), "moat_node_up{") {
				t.Errorf("%s GET %s: no moat_node_up in %.200s", spec, path, body)
			}
		}
	}
	if _, err := Listen("0.0.0.0:0"); err == nil {
		t.Error("Listen(0.0.0.0:0) listened; want refused")
	}
}
