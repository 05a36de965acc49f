package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestRemoteTunnel: over a remote context (the operator's own ssh, through
// a bastion), moat tunnel passes a half-close on, holds 16 connections
// open at once to one replica (past sshd's MaxSessions on the master's
// connection to the node), and ends with exit 0 on SIGINT.
func TestRemoteTunnel(t *testing.T) {
	h := testcluster.NewMasterHost(t, 2)
	h.Enrol(h.Master, "n2")
	h.Master.ImportProbe(t, "probe:1")
	alice := h.AddUser("alice", "admin@*")
	onlyThroughBastion(t, h)
	o := newOperator(t, h, alice)
	o.ok("context", "add", "prod", "moat-master", "--tenant", "default")
	o.ok("context", "use", "prod")
	spec := filepath.Join(t.TempDir(), "app.yaml")
	for _, app := range []string{
		"name: sink\nimage: probe:1\nreplicas: 1\nargs: [sink, \":9000\"]\nresources: {cpu: 100m, memory: 32Mi}\nports: [{name: sink, port: 9000}]\nupdate: {deadline: 30s}\n",
		"name: web\nimage: probe:1\nreplicas: 1\nargs: [serve, \":8080\"]\nresources: {cpu: 100m, memory: 32Mi}\nports: [{name: http, port: 8080}]\n" +
			"health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\nupdate: {deadline: 30s}\n",
	} {
		os.WriteFile(spec, []byte(app), 0o644)
		o.ok("deploy", "-f", spec)
	}

	// Half-close: n connections at once each send their number,
	// half-close, and read the sink's count back.
	tun := o.startTunnel(t, "sink:9000")
	for _, n := range []int{1, 8} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed []string
		for i := range n {
			wg.Go(func() {
				got, err := sinkCount(tun.addr, fmt.Sprint(i))
				if want := fmt.Sprintf("ok %d\n", len(fmt.Sprint(i))); err != nil || got != want {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%d: %q %v", i, got, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(failed) > 0 {
			t.Errorf("%d half-closed connections at once over the remote context: %d failed: %s; the tunnel logged:\n%s",
				n, len(failed), strings.Join(failed, "; "), tun.stderr.String())
		}
	}
	tun.stop(t)

	// More connections open at once than sshd's MaxSessions (10 by
	// default): each is its own dial, so its own ssh session on the
	// shared connection. Each has answered a request before the next
	// opens, so all are open together; then each answers another.
	tun = o.startTunnel(t, "web:8080")
	const held = 16
	var conns []net.Conn
	var readers []*bufio.Reader
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var refused error
	for range held {
		c, err := net.DialTimeout("tcp", tun.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		if refused = httpGet(c, r); refused != nil {
			c.Close()
			break
		}
		conns, readers = append(conns, c), append(readers, r)
	}
	for i, c := range conns {
		if err := httpGet(c, readers[i]); err != nil {
			t.Errorf("connection %d, with %d open: %v", i+1, len(conns), err)
		}
	}
	if refused != nil || len(conns) != held {
		// sshd allows 10 sessions per connection (MaxSessions): the
		// master opens more connections to the node past that.
		t.Errorf("%d of %d connections held open at once over the remote context; the next: %v; the tunnel logged:\n%s",
			len(conns), held, refused, tun.stderr.String())
	}
	tun.stop(t)
}

// sinkCount sends msg to the sink through the tunnel, half-closes, and
// returns its answer.
func sinkCount(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	return string(got), err
}

// httpGet sends GET / on a kept-alive connection and reads the answer.
func httpGet(c net.Conn, r *bufio.Reader) error {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "probe ") {
		return fmt.Errorf("%s %q %v", resp.Status, body, err)
	}
	return nil
}

// remoteTunnel is moat tunnel running on the operator's machine.
type remoteTunnel struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testcluster.LockedBuffer
	exited chan error
}

// startTunnel runs moat tunnel TARGET on the laptop and returns once it
// listens.
func (o *operator) startTunnel(t *testing.T, target string) *remoteTunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	tun := &remoteTunnel{cmd: o.command(ctx, "tunnel", target), stderr: &testcluster.LockedBuffer{}, exited: make(chan error, 1)}
	tun.cmd.Stderr = tun.stderr
	out, err := tun.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
		tun.exited <- tun.cmd.Wait()
	}()
	t.Cleanup(func() {
		tun.cmd.Process.Kill()
		err := <-tun.exited
		tun.exited <- err
	})
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^tunnel (127\.0\.0\.1:\d+) → ` + regexp.QuoteMeta(target) + `\n$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("moat tunnel %s printed %q; stderr: %s", target, line, tun.stderr.String())
		}
		tun.addr = m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("moat tunnel %s printed nothing in 30s; stderr: %s", target, tun.stderr.String())
	}
	return tun
}

// stop interrupts the tunnel and checks it exits 0 and stops listening.
func (tun *remoteTunnel) stop(t *testing.T) {
	t.Helper()
	tun.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-tun.exited:
		tun.exited <- err
		if err != nil {
			t.Errorf("moat tunnel after SIGINT: %v; stderr: %s", err, tun.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("moat tunnel still running 15s after SIGINT")
	}
	if c, err := net.DialTimeout("tcp", tun.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the tunnel exited", tun.addr)
	}
}
