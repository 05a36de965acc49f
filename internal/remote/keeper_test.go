package remote

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestKeeper: a keeper holds a session ready through the bastion; a
// command takes it (the session's pipes, passed over the keeper's
// socket) and its request is answered on it; the keeper then has the
// next one ready; asked to exit, it does, its session gone.
func TestKeeper(t *testing.T) {
	t.Setenv(NoKeeperEnv, "1")
	w := newWorld(t)
	m := w.client(t, "moat-master", 0, "web")
	done := make(chan struct{})
	var kerr error
	go func() { kerr = m.RunKeeper(); close(done) }()
	t.Cleanup(func() {
		StopKeeper(m.keeperSocket())
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the keeper did not exit")
		}
	})
	for i := range 2 {
		c := take(t, m)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /v1/ping HTTP/1.1\r\nHost: master\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("take %d: %v", i, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok":true`) {
			t.Fatalf("take %d: %s %q", i, resp.Status, body)
		}
		c.Close()
	}
	// Through the HTTP client, as commands reach the master.
	if body, err := get(context.Background(), m.HTTP(), "/v1/ping"); err != nil || !strings.Contains(body, `"tenant":"web"`) {
		t.Fatalf("ping: %q %v", body, err)
	}
	if err := StopKeeper(m.keeperSocket()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if kerr != nil {
			t.Fatal(kerr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the keeper did not exit")
	}
	if _, err := os.Stat(m.keeperSocket()); !os.IsNotExist(err) {
		t.Errorf("the keeper's socket is still there: %v", err)
	}
	if _, err := m.fromKeeper(); err == nil {
		t.Error("a session from a keeper that exited")
	}
}

// take waits (10 s at most) for the keeper's ready session.
func take(t *testing.T, m *Master) *conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := m.fromKeeper()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready session from the keeper: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSharing: an ssh command that turns connection sharing off gets no
// keeper; MOAT_SSH_KEEPER=0 neither.
func TestSharing(t *testing.T) {
	for _, tt := range []struct {
		ssh  string
		want bool
	}{
		{"ssh", true},
		{"ssh -F cfg -o ServerAliveInterval=5", true},
		{"ssh -o ControlMaster=no", false},
		{"ssh -oControlPath=none", false},
		{"ssh -o controlpath=NONE", false},
		{"ssh -S none", false},
		{"ssh -o ControlMaster=auto", true},
	} {
		t.Setenv(NoKeeperEnv, "")
		if got := (&Master{SSH: strings.Fields(tt.ssh)}).useKeeper(); got != tt.want {
			t.Errorf("%q: keeper %v, want %v", tt.ssh, got, tt.want)
		}
		m := &Master{SSH: strings.Fields(tt.ssh)}
		if got := m.sharing(); got != tt.want {
			t.Errorf("%q: sharing %v, want %v", tt.ssh, got, tt.want)
		}
	}
	t.Setenv(NoKeeperEnv, "0")
	if (&Master{SSH: []string{"ssh"}}).useKeeper() {
		t.Errorf("%s=0: a keeper", NoKeeperEnv)
	}
}
