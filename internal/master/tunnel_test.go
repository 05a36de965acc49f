package master_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// tunnelProc is a running moat tunnel.
type tunnelProc struct {
	cmd    *exec.Cmd
	addr   string // what it listens on
	stderr *testcluster.LockedBuffer
	exited chan error
}

// startTunnel runs moat tunnel against the test master and returns once it
// has printed where it listens; parse reads that from its first line.
func (e *env) startTunnel(parse func(line string) string, args ...string) *tunnelProc {
	e.t.Helper()
	cmd := exec.Command(testcluster.Moat(e.t), append([]string{"tunnel"}, args...)...)
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+e.m.Socket)
	p := &tunnelProc{cmd: cmd, stderr: &testcluster.LockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
		p.exited <- cmd.Wait()
	}()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case line := <-lines:
		if p.addr = parse(line); p.addr == "" {
			e.t.Fatalf("moat tunnel %v printed %q; stderr: %s", args, line, p.stderr)
		}
	case <-time.After(20 * time.Second):
		e.t.Fatalf("moat tunnel %v printed nothing in 20s; stderr: %s", args, p.stderr)
	}
	return p
}

// stop signals the tunnel and checks it exits 0 and no longer listens.
func (p *tunnelProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		if err != nil {
			t.Errorf("moat tunnel after %v: %v; stderr: %s", sig, err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("moat tunnel still running 10s after %v", sig)
	}
	if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the tunnel exited", p.addr)
	}
}

// tunnelGet sends GET / through the tunnel on a new TCP connection and
// returns the probe's answer ("probe REPLICA").
func tunnelGet(addr string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %q: %v", resp.Status, body, err)
	}
	return strings.TrimSpace(string(body)), nil
}

// getMany sends n requests through the tunnel, three at a time, and
// returns how many each replica answered and the errors.
func getMany(addr string, n int) (map[string]int, []error) {
	var mu sync.Mutex
	seen := map[string]int{}
	var errs []error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range jobs {
				got, err := tunnelGet(addr)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					seen[got]++
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return seen, errs
}

var tunnelLine = regexp.MustCompile(`^tunnel (127\.0\.0\.1:\d+) → web:8080\n$`)

// TestTunnel: moat tunnel listens on a free local port and carries each
// connection to a ready replica through the master's dial, spread over
// the replicas; it goes on serving when a node holding one dies, and
// ends cleanly, exit 0 and port closed, on SIGINT or SIGTERM.
func TestTunnel(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("web", 3))
	e.wait("web", r.Revision)
	r = e.deploy(`name: sink
image: probe:1
args: [sink, ":9000"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: sink, port: 9000}]
update: {deadline: 20s}
`)
	e.wait("sink", r.Revision)
	owner := map[string]string{} // replica → node
	for _, rep := range e.replicas("web") {
		owner[rep.ID] = rep.Node
	}

	// Mistakes fail before anything listens.
	if _, errOut, code := moatWithin(t, e, "tunnel", "web:http"); code != 2 || !strings.Contains(errOut, "65535") {
		t.Errorf("moat tunnel web:http: exit %d, %s; want 2 and the port's range", code, errOut)
	}
	if _, errOut, code := moatWithin(t, e, "tunnel", "nosuch:8080"); code == 0 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("moat tunnel nosuch:8080: exit %d, %s; want a failure naming the app", code, errOut)
	}

	tun := e.startTunnel(func(line string) string {
		if m := tunnelLine.FindStringSubmatch(line); m != nil {
			return m[1]
		}
		return ""
	}, "web:8080", "0")

	seen, errs := getMany(tun.addr, 30)
	if len(errs) > 0 || len(seen) < 2 {
		t.Fatalf("30 requests through the tunnel: answered by %v, errors %v; want all answered, by more than one replica; stderr: %s", seen, errs, tun.stderr)
	}
	for rep := range seen {
		if owner[strings.TrimPrefix(rep, "probe ")] == "" {
			t.Errorf("answered by %q, not one of web's replicas %v", rep, owner)
		}
	}

	// Half-close, end to end: the probe's sink reads to EOF, then answers
	// with the count; the answer comes back only if the client's CloseWrite
	// reached the container and the way back stayed open.
	sink := e.startTunnel(func(line string) string {
		m := regexp.MustCompile(`^tunnel (127\.0\.0\.1:\d+) → sink:9000\n$`).FindStringSubmatch(line)
		if m == nil {
			return ""
		}
		return m[1]
	}, "sink:9000")
	c, err := net.DialTimeout("tcp", sink.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ok 1048576\n" {
		t.Errorf("1 MiB then a half-close through the tunnel to sink: %q, %v; want \"ok 1048576\"; stderr: %s", got, err, sink.stderr)
	}
	sink.stop(t, syscall.SIGINT)

	// A node holding a replica dies: requests in flight to it may fail;
	// once the master has noticed, every new connection succeeds.
	dead := owner[strings.TrimPrefix(firstKey(seen), "probe ")]
	stopped := time.Now()
	if err := e.c.StopNode(dead); err != nil {
		t.Fatal(err)
	}
	// Three clients keep sending while the master has not noticed.
	var (
		mu      sync.Mutex
		failed  []error
		sent    int
		slowest time.Duration
		wg      sync.WaitGroup
	)
	quit := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				start := time.Now()
				_, err := tunnelGet(tun.addr)
				mu.Lock()
				sent++
				slowest = max(slowest, time.Since(start))
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nodes, err := e.m.Client.Nodes(context.Background())
		if err != nil {
			close(quit)
			wg.Wait()
			t.Fatal(err)
		}
		if nodeState(nodes, dead) != "up" {
			break
		}
		if time.Now().After(deadline) {
			close(quit)
			wg.Wait()
			t.Fatalf("the master did not notice %s stopped within 30s", dead)
		}
	}
	noticed := time.Since(stopped)
	close(quit)
	wg.Wait()
	seen, errs = getMany(tun.addr, 30)
	t.Logf("%s stopped: the master noticed after %v; meanwhile %d of %d requests failed (%v), the slowest took %v; after: answered by %v",
		dead, noticed.Round(time.Millisecond), len(failed), sent, failed, slowest.Round(time.Millisecond), seen)
	if len(errs) > 0 {
		t.Errorf("after the master noticed %s down: %d of 30 requests failed: %v; stderr: %s", dead, len(errs), errs, tun.stderr)
	}
	for rep := range seen {
		if owner[strings.TrimPrefix(rep, "probe ")] == dead {
			t.Errorf("answered by %s, on the dead node %s", rep, dead)
		}
	}
	t.Logf("the tunnel logged: %s", tun.stderr)
	tun.stop(t, syscall.SIGINT)

	// --json prints one object. A port web does not declare passes the
	// start (the app is there) but every connection fails: each is closed
	// and logged with the master's reason, and the tunnel goes on; SIGTERM
	// ends it too.
	tun = e.startTunnel(func(line string) string {
		var l struct {
			Listen, App string
			Port        int
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.App != "web" || l.Port != 9999 {
			return ""
		}
		return l.Listen
	}, "--json", "web:9999")
	for i := range 2 {
		if got, err := tunnelGet(tun.addr); err == nil {
			t.Errorf("through a tunnel to an undeclared port: %q", got)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(tun.stderr.String(), "tunnel connection failed") < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("connection %d to web:9999 not logged: %s", i, tun.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if logged := tun.stderr.String(); !strings.Contains(logged, "8080") || strings.Count(logged, "\n") != 2 {
		t.Errorf("the tunnel logged %q; want one line per failed connection, naming the declared port", logged)
	}
	t.Logf("the tunnel to web:9999 logged: %s", tun.stderr)
	tun.stop(t, syscall.SIGTERM)

}

// moatWithin runs the CLI against the test master, for 20 s at most.
func moatWithin(t *testing.T, e *env, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testcluster.Moat(t), args...)
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+e.m.Socket)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("moat %v still running after 20s: %s", args, errOut.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

func nodeState(nodes []masterapi.Node, name string) string {
	for _, n := range nodes {
		if n.Name == name {
			return n.State
		}
	}
	return ""
}
