package master_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/ns"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkLinks: a link deployed through the master, from web's replica
// on n1 to api's replica on n2 (each node labelled so), against ssh -L on
// the same path in the same run: OpenSSH's client inside n1's network
// namespace, with the operator's key, to n2's sshd, forwarding to a
// server on n2's loopback. Direct TCP from n1's namespace to n2's address
// is the floor. The servers are this process's, the same code on each
// path: for the link inside api's container (its loopback, port 9100,
// declared), for ssh -L and direct TCP in n2's own namespace. Clients are
// this process's too, from a thread in web's container (the link, at
// 127.0.0.1:9000) or in n1's namespace. Per round, interleaved: 128 MiB
// one way on a new connection (the sink answers its count), and 128 MiB
// the other way (n2 to n1: "down", an answer's direction); new
// connections, each timed to its first echoed byte (the link's setup,
// or ssh -L's channel open, plus one round trip); 1-byte round trips on
// a held connection. Ratios are link/ssh -L: throughput ≥ 1, setup and
// latency ≤ 1 is better. A path's setup is its new connection's first
// echo less its held connection's round trip (p50s).
//
//	go test -run XXX -bench 'Links$' -benchtime 3x ./internal/master
func BenchmarkLinks(b *testing.B) {
	e := linkBenchEnv(b)
	n1, _ := e.c.Node("n1")
	n2, _ := e.c.Node("n2")
	api, web := e.linkPair(b)
	// Servers: in api's container (the link's target) and in n2's namespace.
	serveIn(b, api, "127.0.0.1:9100")
	serveIn(b, n2.SSHDPid, "0.0.0.0:9100")
	fwd := sshForward(b, e.c, "n1", "n2", 7000, "127.0.0.1:9100")

	inWeb, inN1 := netnsDialer(b, web), netnsDialer(b, n1.SSHDPid)
	paths := []struct {
		name    string
		dial    func() (net.Conn, error)
		prepare func() func() (net.Conn, error) // the socket made; connect is timed
	}{
		{"link", func() (net.Conn, error) { return inWeb.dial("127.0.0.1:9000") }, func() func() (net.Conn, error) { return inWeb.prepare("127.0.0.1:9000") }},
		{"ssh-L", func() (net.Conn, error) { return inN1.dial(fwd) }, func() func() (net.Conn, error) { return inN1.prepare(fwd) }},
		{"direct", func() (net.Conn, error) { return inN1.dial(n2.Addr.String() + ":9100") }, func() func() (net.Conn, error) { return inN1.prepare(n2.Addr.String() + ":9100") }},
	}
	for _, p := range paths { // warm: the link's mux session, ssh -L's channel path
		waitPath(b, p.name, p.dial)
	}
	const size = 128 << 20
	elapsed := map[string]time.Duration{}
	down := map[string]time.Duration{}
	setup := map[string][]time.Duration{}
	rtt := map[string][]time.Duration{}
	for range b.N {
		for _, p := range paths {
			elapsed[p.name] += sinkBytes(b, p.dial, size)
		}
		for _, p := range paths {
			down[p.name] += sourceBytes(b, p.dial, size)
		}
		for range 200 {
			for _, p := range paths {
				setup[p.name] = append(setup[p.name], firstEcho(b, p.prepare()))
			}
		}
		for _, p := range paths {
			rtt[p.name] = append(rtt[p.name], roundTrips(b, p.dial, 2000)...)
		}
	}
	mibs := func(name string) float64 { return float64(size>>20) * float64(b.N) / elapsed[name].Seconds() }
	downMibs := func(name string) float64 { return float64(size>>20) * float64(b.N) / down[name].Seconds() }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, p := range paths {
		b.ReportMetric(mibs(p.name), p.name+"-MiB/s")
		b.ReportMetric(downMibs(p.name), p.name+"-down-MiB/s")
		b.ReportMetric(ms(pct(setup[p.name], 50)), p.name+"-conn-p50-ms")
		// The new connection's own cost: its first echo less a round trip
		// on a held connection of the same path.
		b.ReportMetric(ms(pct(setup[p.name], 50)-pct(rtt[p.name], 50)), p.name+"-setup-p50-ms")
		b.ReportMetric(ms(pct(rtt[p.name], 50)), p.name+"-rtt-p50-ms")
		b.ReportMetric(ms(pct(rtt[p.name], 99)), p.name+"-rtt-p99-ms")
	}
	b.ReportMetric(mibs("link")/mibs("ssh-L"), "throughput-vs-ssh-L")
	b.ReportMetric(downMibs("link")/downMibs("ssh-L"), "down-vs-ssh-L")
	b.ReportMetric(float64(pct(setup["link"], 50))/float64(pct(setup["ssh-L"], 50)), "conn-p50-vs-ssh-L")
	b.ReportMetric(float64(pct(setup["link"], 50)-pct(rtt["link"], 50))/float64(pct(setup["ssh-L"], 50)-pct(rtt["ssh-L"], 50)), "setup-p50-vs-ssh-L")
	for _, q := range []int{50, 99} {
		b.ReportMetric(float64(pct(rtt["link"], q))/float64(pct(rtt["ssh-L"], q)), fmt.Sprintf("rtt-p%d-vs-ssh-L", q))
		b.ReportMetric(ms(pct(rtt["link"], q)-pct(rtt["direct"], q)), fmt.Sprintf("rtt-p%d-added-vs-direct-ms", q))
	}
	b.ReportMetric(0, "ns/op")
}

// linkBenchEnv is a master with two nodes, n1 labelled side=web and n2
// side=api, so that a link's two ends are on different nodes.
func linkBenchEnv(b *testing.B) *env {
	c := testcluster.NewCluster(b, 2)
	m := c.StartMaster()
	ctx := context.Background()
	for name, side := range map[string]string{"n1": "web", "n2": "api"} {
		c.Install(name)
		n, _ := c.Node(name)
		node := inventory.Node{Name: name, Addr: n.Addr.String() + ":22", User: "root", HostKey: n.HostKey, Enrolled: time.Now(),
			Labels: map[string]string{"side": side}, Operator: inventory.Access{Dest: name, SSHConfig: c.SSHConfig}}
		if err := m.Client.RegisterNode(ctx, node.Registration()); err != nil {
			b.Fatalf("register %s: %v", name, err)
		}
	}
	e := &env{t: &testing.T{}, c: c, m: m}
	benchPoll(b, "both nodes up", 30*time.Second, func() bool {
		nodes, err := m.Client.Nodes(ctx)
		up := 0
		for _, n := range nodes {
			if n.State == "up" && n.Info.CPUs > 0 {
				up++
			}
		}
		return err == nil && up == 2
	})
	m.ImportProbe(b, "probe:1")
	return e
}

// linkSpec is the probe app, on the nodes labelled side=SIDE, declaring
// 9100 besides its HTTP port (the benchmarks' servers listen there).
func linkSpec(name, side string, replicas int, extra ...string) string {
	yaml := spec(name, replicas, append([]string{fmt.Sprintf("placement: {labels: {side: %s}}", side)}, extra...)...)
	yaml = strings.Replace(yaml, "ports: [{name: http, port: 8080}]", "ports: [{name: http, port: 8080}, {name: bench, port: 9100}]", 1)
	return strings.Replace(yaml, "cpu: 100m, memory: 32Mi", "cpu: 10m, memory: 16Mi", 1)
}

// linkPair deploys api on n2 and web on n1 with a link web → api:9100 at
// 127.0.0.1:9000, and returns the pids of their containers.
func (e *env) linkPair(b *testing.B) (api, web int) {
	r := e.benchDeploy(b, linkSpec("api", "api", 1))
	waitDeployed(b, e, "api", r.Revision)
	r = e.benchDeploy(b, linkSpec("web", "web", 1, "links: [{app: api, port: 9100, local: 9000}]"))
	waitDeployed(b, e, "web", r.Revision)
	return e.replicaPid(b, "api"), e.replicaPid(b, "web")
}

func (e *env) benchDeploy(b *testing.B, yaml string) masterapi.DeployResponse {
	r, err := e.m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: yaml, File: "app.yaml"})
	if err != nil {
		b.Fatalf("deploy: %v", err)
	}
	return r
}

// replicaPid is the pid of the app's one ready replica, from its node.
func (e *env) replicaPid(b *testing.B, app string) int {
	ctx := context.Background()
	var pid int
	benchPoll(b, app+"'s replica running", 30*time.Second, func() bool {
		reps, err := e.m.Client.Replicas(ctx, app)
		if err != nil {
			return false
		}
		for _, r := range reps {
			if r.State == "ready" && r.Desired == "run" {
				c, err := e.c.NodeAPI(r.Node).Container(ctx, r.ID)
				if err == nil && c.Pid != 0 {
					pid = c.Pid
					return true
				}
			}
		}
		return false
	})
	return pid
}

func benchPoll(b *testing.B, what string, timeout time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sshForward runs ssh -N -L 127.0.0.1:PORT:TO in from's network namespace
// to node to's sshd, as the operator (root, no restrictions), and returns
// the forward's address in from's namespace once it accepts.
func sshForward(b *testing.B, c *testcluster.Cluster, from, to string, port int, dest string) string {
	n, _ := c.Node(from)
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(n.SSHDPid), "-n", "--",
		"ssh", "-F", c.SSHConfig, "-N", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:%s", port, dest), to)
	out := &testcluster.LockedBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if b.Failed() {
			b.Logf("ssh -L: %s", out.String())
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// waitPath polls until a connection through the path echoes.
func waitPath(b *testing.B, name string, dial func() (net.Conn, error)) {
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := dial()
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Write([]byte("ex"))
			if err == nil {
				buf := make([]byte, 1)
				_, err = io.ReadFull(conn, buf)
			}
			conn.Close()
			if err == nil {
				return
			}
		}
		last = err
		if time.Now().After(deadline) {
			b.Fatalf("%s: no echo within 30s: %v", name, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sinkBytes sends size bytes on a new connection, half-closes and waits
// for the sink's count: the time from the first byte to the answer.
func sinkBytes(b *testing.B, dial func() (net.Conn, error), size int) time.Duration {
	conn, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	chunk := make([]byte, 1<<20)
	chunk[0] = 's'
	t0 := time.Now()
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			b.Fatalf("write: %v", err)
		}
		chunk[0] = 0
	}
	conn.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(conn).ReadString('\n')
	took := time.Since(t0)
	if want := fmt.Sprintf("ok %d\n", size-1); line != want {
		b.Fatalf("the sink answered %q, %v; want %q", line, err, want)
	}
	return took
}

// sourceBytes asks for size bytes on a new connection and reads them
// until the server's end: the time from the request to the end.
func sourceBytes(b *testing.B, dial func() (net.Conn, error), size int) time.Duration {
	conn, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	req := make([]byte, 9)
	req[0] = 'r'
	binary.BigEndian.PutUint64(req[1:], uint64(size))
	t0 := time.Now()
	if _, err := conn.Write(req); err != nil {
		b.Fatalf("write: %v", err)
	}
	n, err := io.CopyBuffer(io.Discard, conn, make([]byte, 1<<20))
	took := time.Since(t0)
	if n != int64(size) || err != nil {
		b.Fatalf("read %d bytes of %d: %v", n, size, err)
	}
	return took
}

// firstEcho is a new connection's time from connect(2) to its first
// echoed byte.
func firstEcho(b *testing.B, connect func() (net.Conn, error)) time.Duration {
	t0 := time.Now()
	conn, err := connect()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := []byte("ex")
	if _, err := conn.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(conn, buf[:1]); err != nil {
		b.Fatalf("first echo: %v", err)
	}
	return time.Since(t0)
}

// roundTrips times n 1-byte round trips on one held connection.
func roundTrips(b *testing.B, dial func() (net.Conn, error), n int) []time.Duration {
	conn, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	buf := []byte("ex")
	if _, err := conn.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(conn, buf[:1]); err != nil {
		b.Fatal(err)
	}
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := conn.Write(buf[:1]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf[:1]); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

func pct(ds []time.Duration, q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*q/100]
}

// serveIn listens on addr in pid's network namespace until the benchmark
// ends. A connection's first byte says what it wants: 'e' an echo of the
// rest, 's' the count of the rest once it ends ("ok N\n"), 'r' and a
// 64-bit size that many bytes, then its end.
func serveIn(b *testing.B, pid int, addr string) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	ns.Go(func() {
		if err := ns.Join(pid, "net"); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	})
	r := <-ch
	if r.err != nil {
		b.Fatalf("listen on %s in pid %d's namespace: %v", addr, pid, r.err)
	}
	b.Cleanup(func() { r.ln.Close() })
	go func() {
		for {
			conn, err := r.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.(*net.TCPConn).SetNoDelay(true)
				var mode [1]byte
				if _, err := io.ReadFull(conn, mode[:]); err != nil {
					return
				}
				switch mode[0] {
				case 'e':
					io.Copy(conn, conn)
				case 's':
					n, _ := io.Copy(io.Discard, conn)
					fmt.Fprintf(conn, "ok %d\n", n)
				case 'r':
					var size [8]byte
					if _, err := io.ReadFull(conn, size[:]); err != nil {
						return
					}
					chunk := make([]byte, 1<<20)
					for left := int64(binary.BigEndian.Uint64(size[:])); left > 0; left -= int64(len(chunk)) {
						if _, err := conn.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
}

// nsDialer makes sockets on a thread that stays in a network namespace
// (a socket belongs to the namespace it was made in); connecting them
// needs no namespace, so a timed connect is only connect(2), as an app's.
type nsDialer struct {
	jobs chan chan madeSocket
}

type madeSocket struct {
	fd  int
	err error
}

func netnsDialer(b *testing.B, pid int) *nsDialer {
	d := &nsDialer{jobs: make(chan chan madeSocket)}
	joined := make(chan error, 1)
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	ns.Go(func() {
		err := ns.Join(pid, "net")
		joined <- err
		if err != nil {
			return
		}
		for {
			select {
			case done := <-d.jobs:
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				done <- madeSocket{fd, err}
			case <-stop:
				return
			}
		}
	})
	if err := <-joined; err != nil {
		b.Fatalf("join pid %d's network namespace: %v", pid, err)
	}
	return d
}

// prepare makes a socket in the namespace; the function it returns
// connects it to addr (IPv4:port).
func (d *nsDialer) prepare(addr string) func() (net.Conn, error) {
	done := make(chan madeSocket, 1)
	d.jobs <- done
	s := <-done
	return func() (net.Conn, error) {
		if s.err != nil {
			return nil, s.err
		}
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			unix.Close(s.fd)
			return nil, err
		}
		if err := unix.Connect(s.fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
			unix.Close(s.fd)
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		f := os.NewFile(uintptr(s.fd), addr)
		defer f.Close()
		return net.FileConn(f)
	}
}

func (d *nsDialer) dial(addr string) (net.Conn, error) { return d.prepare(addr)() }

// BenchmarkLinkMemory: what links cost in memory. web on n1 with no link,
// then with 20, each to an app of its own on n2 (one replica each), every
// link used once (its SSH connection to n2 and its mux session open) and
// then idle. Reported per link: the RSS n1's node daemon adds, and on n2
// what the link's gate process and sshd session take (PSS).
//
//	go test -run XXX -bench LinkMemory -benchtime 1x ./internal/master
func BenchmarkLinkMemory(b *testing.B) {
	const links = 20
	e := linkBenchEnv(b)
	n1, _ := e.c.Node("n1")
	var specs, links_ []string
	for i := range links {
		name := fmt.Sprintf("t%d", i)
		specs = append(specs, strings.Replace(linkSpec(name, "api", 1), "cpu: 10m, memory: 16Mi", "cpu: 10m, memory: 8Mi", 1))
		links_ = append(links_, fmt.Sprintf("{app: %s, port: 8080, local: %d}", name, 9001+i))
	}
	revs := map[string]int{}
	for i, yaml := range specs {
		revs[fmt.Sprintf("t%d", i)] = e.benchDeploy(b, yaml).Revision
	}
	for app, rev := range revs {
		waitDeployed(b, e, app, rev)
	}
	r := e.benchDeploy(b, linkSpec("web", "web", 1))
	waitDeployed(b, e, "web", r.Revision)
	for range b.N {
		before := settledRSS(b, n1.NetNS, "moat node serve")
		gatesBefore, sshdBefore := nodePSS(b, e, "n2")
		r = e.benchDeploy(b, linkSpec("web", "web", 1, "links: ["+strings.Join(links_, ", ")+"]"))
		waitDeployed(b, e, "web", r.Revision)
		web := netnsDialer(b, e.replicaPid(b, "web"))
		for i := range links {
			benchPoll(b, fmt.Sprintf("link %d answering", i), 30*time.Second, func() bool {
				return httpGet(web, fmt.Sprintf("127.0.0.1:%d", 9001+i)) == nil
			})
		}
		after := settledRSS(b, n1.NetNS, "moat node serve")
		gatesAfter, sshdAfter := nodePSS(b, e, "n2")
		b.ReportMetric(before, "daemon-rss-0-links-MiB")
		b.ReportMetric(after, fmt.Sprintf("daemon-rss-%d-links-MiB", links))
		b.ReportMetric((after-before)*1024/links, "daemon-KiB/link")
		b.ReportMetric((gatesAfter-gatesBefore)*1024/links, "target-gate-KiB/link")
		b.ReportMetric((sshdAfter-sshdBefore)*1024/links, "target-sshd-KiB/link")
		r = e.benchDeploy(b, linkSpec("web", "web", 1))
		waitDeployed(b, e, "web", r.Revision)
	}
	b.ReportMetric(0, "ns/op")
}

// settledRSS is the resident set of the process in the namespace whose
// command line holds cmd, the median of 10 samples 100 ms apart (a Go
// heap breathes with its collections).
func settledRSS(b *testing.B, netns, cmd string) float64 {
	pid := netnsProcess(b, netns, cmd)
	var samples []float64
	for range 10 {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				samples = append(samples, kb/1024)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(samples)
	return samples[len(samples)/2]
}

func netnsProcess(b *testing.B, netns, cmd string) int {
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(p)
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(strings.ReplaceAll(string(raw), "\x00", " "), cmd) {
			return pid
		}
	}
	b.Fatalf("no %q in %s", cmd, netns)
	return 0
}

// nodePSS is what a node's moat gate processes and sshd sessions take.
func nodePSS(b *testing.B, e *env, node string) (gates, sshd float64) {
	n, _ := e.c.Node(node)
	out, err := exec.Command("ip", "netns", "pids", n.NetNS).Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(p)
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		line := strings.ReplaceAll(string(raw), "\x00", " ")
		switch {
		case strings.Contains(line, "moat gate"):
			gates += pssMiB(b, pid)
		case strings.HasPrefix(line, "sshd: "):
			sshd += pssMiB(b, pid)
		}
	}
	return gates, sshd
}

// httpGet asks the probe behind addr for / and reads the answer.
func httpGet(d *nsDialer, addr string) error {
	conn, err := d.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	body, err := io.ReadAll(conn)
	if err != nil || !strings.Contains(string(body), "probe ") {
		return fmt.Errorf("answer %q, %v", body, err)
	}
	return nil
}

// BenchmarkLinkPoolExit: api has two replicas on n2; one's process is
// killed (SIGKILL) and the time until n1's link table no longer lists it
// is measured, then until two replicas are listed again (it restarted, or
// the master replaced it).
//
//	go test -run XXX -bench LinkPoolExit -benchtime 5x ./internal/master
func BenchmarkLinkPoolExit(b *testing.B) {
	e := linkBenchEnv(b)
	r := e.benchDeploy(b, linkSpec("api", "api", 2))
	waitDeployed(b, e, "api", r.Revision)
	r = e.benchDeploy(b, linkSpec("web", "web", 1, "links: [{app: api, port: 8080, local: 9000}]"))
	waitDeployed(b, e, "web", r.Revision)
	n1api, n2api := e.c.NodeAPI("n1"), e.c.NodeAPI("n2")
	ctx := context.Background()
	endpoints := func() []string {
		st, err := n1api.Links(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, l := range st.Table.Links {
			for _, ep := range l.Endpoints {
				out = append(out, ep.Container)
			}
		}
		return out
	}
	var leave, back []time.Duration
	for range b.N {
		var eps []string
		benchPoll(b, "both api replicas in n1's table", 60*time.Second, func() bool {
			eps = endpoints()
			return len(eps) == 2
		})
		victim := eps[0]
		c, err := n2api.Container(ctx, victim)
		if err != nil || c.Pid == 0 {
			b.Fatalf("container %s: %+v, %v", victim, c, err)
		}
		t0 := time.Now()
		if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		benchPoll(b, victim+" out of n1's table", 30*time.Second, func() bool {
			return !slices.Contains(endpoints(), victim)
		})
		leave = append(leave, time.Since(t0))
		benchPoll(b, "two replicas in n1's table again", 60*time.Second, func() bool {
			return len(endpoints()) == 2
		})
		back = append(back, time.Since(t0))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(leave, 50)), "leave-p50-ms")
	b.ReportMetric(ms(pct(leave, 100)), "leave-max-ms")
	b.ReportMetric(ms(pct(back, 50)), "back-p50-ms")
	b.ReportMetric(0, "ns/op")
}
