package sshx_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// The benchmarks run against a real node: namespace, sshd, gate, daemon.
// Each compares moat's path with OpenSSH's own in the same run.
//
//	go test -run XXX -bench . -benchtime 1x ./internal/sshx

func benchNode(b *testing.B) (*testcluster.Cluster, *sshx.Conn) {
	c := testcluster.NewCluster(b, 1)
	c.Install("n1")
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	b.Cleanup(pool.Close)
	conn := pool.Add(c.Target("n1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		b.Fatal(err)
	}
	return c, conn
}

// BenchmarkRPCRoundTrip: a trivial API call over the held connection and a
// kept-alive rpc session. Goal: p50 ≤ 1 ms.
func BenchmarkRPCRoundTrip(b *testing.B) {
	_, conn := benchNode(b)
	api := conn.NodeAPI()
	ctx := context.Background()
	for range 100 { // warm the session
		api.Ping(ctx)
	}
	n := max(b.N, 2000)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range n {
		t0 := time.Now()
		if err := api.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(lat, 50)), "p50-ms")
	b.ReportMetric(ms(pct(lat, 99)), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSFTPUpload: 256 MiB through the gate's SFTP (into the inbox)
// against OpenSSH's scp of the same file to the same node. Goal ≥ 0.9×.
func BenchmarkSFTPUpload(b *testing.B) {
	c, conn := benchNode(b)
	n, _ := c.Node("n1")
	src := filepath.Join(b.TempDir(), "blob")
	writeRandom(b, src, 256<<20)
	inbox := filepath.Join(n.Dir, "var-lib-moat", "inbox")
	var moat, scp, scpLegacy time.Duration
	for range b.N {
		moat += timeIt(func() { sftpUpload(b, conn, src) })
		scp += timeIt(func() { opensshCopy(b, c, "scp", src, "/var/lib/moat/inbox/scp.bin") })
		scpLegacy += timeIt(func() { opensshCopy(b, c, "scp", src, "/var/lib/moat/inbox/scp-o.bin", "-O") })
		for _, f := range []string{benchBlob, "scp.bin", "scp-o.bin"} {
			if fi, err := os.Stat(filepath.Join(inbox, f)); err != nil || fi.Size() != 256<<20 {
				b.Fatalf("%s: %v %v", f, fi, err)
			}
			os.Remove(filepath.Join(inbox, f))
		}
	}
	mib := float64(256 * b.N)
	b.ReportMetric(mib/moat.Seconds(), "moat-MiB/s")
	b.ReportMetric(mib/scp.Seconds(), "scp-MiB/s")
	b.ReportMetric(mib/scpLegacy.Seconds(), "scp-O-MiB/s")
	b.ReportMetric(scp.Seconds()/moat.Seconds(), "vs-scp")
	b.ReportMetric(0, "ns/op")
}

// benchBlob is where the upload goes: the inbox takes blob names only (the
// content is not checked until a pull).
const benchBlob = "blobs/sha256-0000000000000000000000000000000000000000000000000000000000000000"

func sftpUpload(b *testing.B, conn *sshx.Conn, src string) {
	client, err := conn.SFTP(context.Background(), sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	in, _ := os.Open(src)
	defer in.Close()
	if err := client.MkdirAll("blobs"); err != nil {
		b.Fatal(err)
	}
	out, err := client.Create(benchBlob)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := out.ReadFrom(in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// opensshCopy runs scp with the operator's key (the machine's own sftp
// server; the master's key is pinned to the gate).
func opensshCopy(b *testing.B, c *testcluster.Cluster, prog, src, dst string, extra ...string) {
	n, _ := c.Node("n1")
	known := filepath.Join(b.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(n.Addr.String()+" "+n.HostKey+"\n"), 0o600)
	args := append([]string{"-q", "-i", c.OperatorKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + known, "-o", "BatchMode=yes"}, extra...)
	args = append(args, src, "root@"+n.Addr.String()+":"+dst)
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v %s", prog, err, out)
	}
}

// BenchmarkDial: throughput (256 MiB) and connection rate through the
// gate's dial, against ssh -L to the same port of the same server. Goal:
// throughput ≥ 1.0×.
func BenchmarkDial(b *testing.B) {
	c, conn := benchNode(b)
	startSink(b, c)
	localPort := sshForward(b, c)
	dialMoat := func() net.Conn {
		s, err := conn.Dial(context.Background(), "sink", 9000)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	dialSSH := func() net.Conn {
		s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", localPort))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	var moatT, sshT time.Duration
	for range b.N {
		moatT += timeIt(func() { pump(b, dialMoat(), payload, 256) })
		sshT += timeIt(func() { pump(b, dialSSH(), payload, 256) })
	}
	const conns = 200
	moatRate := float64(conns) / timeIt(func() {
		for range conns {
			pump(b, dialMoat(), payload[:1], 1)
		}
	}).Seconds()
	sshRate := float64(conns) / timeIt(func() {
		for range conns {
			pump(b, dialSSH(), payload[:1], 1)
		}
	}).Seconds()
	mib := float64(256 * b.N)
	b.ReportMetric(mib/moatT.Seconds(), "moat-MiB/s")
	b.ReportMetric(mib/sshT.Seconds(), "ssh-L-MiB/s")
	b.ReportMetric(sshT.Seconds()/moatT.Seconds(), "vs-ssh-L")
	b.ReportMetric(moatRate, "moat-conn/s")
	b.ReportMetric(sshRate, "ssh-L-conn/s")
	b.ReportMetric(0, "ns/op")
}

// pump sends count copies of payload, half-closes, and waits for the
// sink's byte count.
func pump(b *testing.B, conn net.Conn, payload []byte, count int) {
	defer conn.Close()
	for range count {
		if _, err := conn.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	conn.(interface{ CloseWrite() error }).CloseWrite()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := fmt.Sprintf("ok %d\n", len(payload)*count); err != nil || line != want {
		b.Fatalf("sink answered %q, %v; want %q", line, err, want)
	}
}

// startSink runs the probe's sink on the node's loopback (host network,
// which root on the node may grant), so the gate's dial and ssh -L reach
// the same server.
func startSink(b *testing.B, c *testcluster.Cluster) {
	ctx := context.Background()
	api := c.NodeAPI("n1")
	f, err := os.Open(testcluster.ProbeImage(b, "probe:1"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := api.ImportImage(ctx, f, ""); err != nil {
		b.Fatal(err)
	}
	testcluster.SignNodeImage(b, api, "probe:1")
	spec := nodeapi.ContainerSpec{Name: "sink", Image: "probe:1", Cmd: []string{"sink", "127.0.0.1:9000"},
		Ports: []nodeapi.Port{{Port: 9000}}, Security: nodeapi.Security{Network: "host"}}
	if _, err := api.CreateContainer(ctx, spec, true); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var up bool
		api.Logs(ctx, "sink", nodeapi.LogOptions{Tail: -1}, func(e nodeapi.LogEntry) error {
			up = up || strings.HasPrefix(e.Line, "sinking")
			return nil
		})
		if up {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the sink did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sshForward starts ssh -L with the operator's key to the sink's port.
func sshForward(b *testing.B, c *testcluster.Cluster) int {
	n, _ := c.Node("n1")
	known := filepath.Join(b.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(n.Addr.String()+" "+n.HostKey+"\n"), 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("ssh", "-N", "-i", c.OperatorKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+known,
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:9000", port), "root@"+n.Addr.String())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			b.Fatal("ssh -L did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkDeadNodeDetection: from cutting a node's link to the pool
// marking it down, at default settings, 10 times. Goal ≤ 3 s.
func BenchmarkDeadNodeDetection(b *testing.B) {
	c, conn := benchNode(b)
	var took []time.Duration
	for range max(b.N, 10) {
		waitUp(b, conn)
		// A link fails at any moment, not just after a keepalive: sample
		// the whole interval.
		time.Sleep(time.Duration(mathrand.Int64N(int64(sshx.DefaultKeepaliveInterval))))
		t0 := time.Now()
		if err := c.CutLink("n1"); err != nil {
			b.Fatal(err)
		}
		for {
			state, _, _ := conn.State()
			if state == sshx.Down {
				break
			}
			<-conn.Changed()
		}
		took = append(took, time.Since(t0))
		if err := c.RestoreLink("n1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(ms(pct(took, 50)), "p50-ms")
	b.ReportMetric(ms(slices.Max(took)), "max-ms")
	b.ReportMetric(0, "ns/op")
}

func waitUp(b *testing.B, conn *sshx.Conn) {
	for {
		state, _, _ := conn.State()
		if state == sshx.Up {
			return
		}
		select {
		case <-conn.Changed():
		case <-time.After(30 * time.Second):
			b.Fatal("the node did not come back")
		}
	}
}

func writeRandom(b *testing.B, path string, size int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
		b.Fatal(err)
	}
}

func timeIt(f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
