package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkLinkAcrossNodes: a link from a replica on n1 to a sink on n2,
// against ssh -L from n1 to the same sink through the same sshd (the
// operator's OpenSSH client, in n1's network namespace): throughput of
// 256 MiB per connection, and new connections (1 byte, half-close, the
// sink's answer) one after another.
//
//	sudo go test -run XXX -bench BenchmarkLinkAcrossNodes -benchtime 3x ./internal/node/
func BenchmarkLinkAcrossNodes(b *testing.B) {
	c := testcluster.NewCluster(b, 2)
	c.Install("n1")
	c.Install("n2")
	api1, api2 := c.NodeAPI("n1"), c.NodeAPI("n2")
	clusterImage(b, api1)
	clusterImage(b, api2)
	ctx := context.Background()
	// The sink on n2's own loopback (host network), so ssh -L reaches it too.
	sink := nodeapi.ContainerSpec{Name: "sink1", Image: probeImage, Cmd: []string{"sink", "127.0.0.1:9000"},
		Labels: map[string]string{"moat.app": "store"}, Ports: []nodeapi.Port{{Port: 9000}}, Security: nodeapi.Security{Network: "host"}}
	if _, err := api2.CreateContainer(ctx, sink, true); err != nil {
		b.Fatal(err)
	}
	web := clusterApp(b, api1, "web1", "web", nil, "sleep")
	n1, _ := c.Node("n1")
	n2, _ := c.Node("n2")

	keyPath := filepath.Join(b.TempDir(), "link_ed25519")
	signer, err := sshkey.GenerateKey(keyPath, "moat-link")
	if err != nil {
		b.Fatal(err)
	}
	pem, _ := os.ReadFile(keyPath)
	id := nodeapi.LinkID("web", "store", 9000)
	setLinks(b, api2, nodeapi.LinkTable{Grants: []nodeapi.LinkGrant{{ID: id, Target: "store", Port: 9000, Key: sshkey.AuthorizedKey(signer.PublicKey())}}})
	setLinks(b, api1, nodeapi.LinkTable{Links: []nodeapi.Link{{ID: id, Source: "web", Local: 5000, Target: "store", Port: 9000, Key: string(pem),
		Endpoints: []nodeapi.LinkEndpoint{{Container: "sink1", Node: "n2", Addr: n2.Addr.String() + ":22", User: "root", HostKey: n2.HostKey}}}}})
	sshPort := sshForwardOnN1(b, c, n1, n2)

	payload := make([]byte, 1<<20)
	rand.Read(payload)
	dial := func(pid, port int) net.Conn {
		var conn net.Conn
		poll(b, fmt.Sprintf("127.0.0.1:%d in pid %d's namespace", port, pid), 20*time.Second, func() bool {
			var err error
			conn, err = dialFrom(pid, port)
			return err == nil
		})
		conn.SetDeadline(time.Now().Add(5 * time.Minute))
		return conn
	}
	pumpB(b, dial(web.Pid, 5000), payload, 1) // warm: the mux is open
	var linkT, sshT time.Duration
	for range b.N {
		linkT += timed(func() { pumpB(b, dial(web.Pid, 5000), payload, 256) })
		sshT += timed(func() { pumpB(b, dial(n1.SSHDPid, sshPort), payload, 256) })
	}
	setup := func(pid, port int) time.Duration {
		var took []time.Duration
		for range 200 {
			took = append(took, timed(func() { pumpB(b, dial(pid, port), payload[:1], 1) }))
		}
		slices.Sort(took)
		return took[100]
	}
	linkSetup, sshSetup := setup(web.Pid, 5000), setup(n1.SSHDPid, sshPort)
	mib := float64(256 * b.N)
	b.ReportMetric(mib/linkT.Seconds(), "link-MiB/s")
	b.ReportMetric(mib/sshT.Seconds(), "ssh-L-MiB/s")
	b.ReportMetric(sshT.Seconds()/linkT.Seconds(), "vs-ssh-L")
	b.ReportMetric(float64(linkSetup)/float64(time.Millisecond), "link-conn-p50-ms")
	b.ReportMetric(float64(sshSetup)/float64(time.Millisecond), "ssh-L-conn-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// sshForwardOnN1 runs ssh -L with the operator's key inside n1, to the
// sink on n2's loopback, and returns its port on n1's loopback.
func sshForwardOnN1(b *testing.B, c *testcluster.Cluster, n1, n2 *local.Node) int {
	// n1's /tmp is its own: the key and known_hosts go there.
	key, err := os.ReadFile(c.OperatorKeyPath)
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(n1.Dir, "tmp", "bench_operator"), key, 0o600)
	os.WriteFile(filepath.Join(n1.Dir, "tmp", "bench_known_hosts"), []byte(n2.Addr.String()+" "+n2.HostKey+"\n"), 0o600)
	const port = 7000
	cmd, err := c.Command("n1", "ssh", "-N", "-i", "/tmp/bench_operator", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=/tmp/bench_known_hosts",
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:9000", port), "root@"+n2.Addr.String())
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return port
}

func timed(f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}

// pumpB sends count copies of payload, half-closes, and checks the sink's
// byte count.
func pumpB(b *testing.B, conn net.Conn, payload []byte, count int) {
	defer conn.Close()
	for range count {
		if _, err := conn.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	conn.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := fmt.Sprintf("ok %d\n", len(payload)*count); err != nil || line != want {
		b.Fatalf("sink answered %q, %v; want %q", line, err, want)
	}
}

// BenchmarkLinkMemory: what the node daemon's resident memory grows by
// per link listener (200 links into one source container), and per link
// connection held open (200 connections through one of them).
//
//	sudo go test -run XXX -bench BenchmarkLinkMemory -benchtime 1x ./internal/node/
func BenchmarkLinkMemory(b *testing.B) {
	n := testcluster.StartNode(b, "--authorized-keys", filepath.Join(b.TempDir(), "authorized_keys"))
	f, err := os.Open(testcluster.ProbeImage(b, probeImage))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := n.Client.ImportImage(context.Background(), f, ""); err != nil {
		b.Fatal(err)
	}
	f.Close()
	api := clusterApp(b, n.Client, "api1", "api", []int{8080}, "serve", "127.0.0.1:8080")
	web := clusterApp(b, n.Client, "web1", "web", nil, "sleep")
	poll(b, "api1 serving", 20*time.Second, func() bool {
		got, err := getFrom(api.Pid, 8080)
		return err == nil && got == "probe api1"
	})
	const count = 200
	var table nodeapi.LinkTable
	for i := range count {
		port := 8080
		if i > 0 {
			port = 10000 + i // undeclared: only the first carries connections
		}
		table.Links = append(table.Links, nodeapi.Link{ID: nodeapi.LinkID("web", "api", port), Source: "web", Local: 5000 + i,
			Target: "api", Port: port, Endpoints: []nodeapi.LinkEndpoint{{Container: "api1", Node: "here"}}})
	}
	before := rss(b, n.Pid())
	setLinks(b, n.Client, table)
	poll(b, "200 listeners", 30*time.Second, func() bool { return len(linkStatus(b, n.Client).Listeners) == count })
	listeners := rss(b, n.Pid())
	var held []net.Conn
	for range count {
		conn, err := dialFrom(web.Pid, 5000)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, conn)
	}
	id := nodeapi.LinkID("web", "api", 8080)
	poll(b, "200 connections open", 30*time.Second, func() bool {
		l, _ := findListener(linkStatus(b, n.Client), id, web.ID)
		return l.Open == count
	})
	conns := rss(b, n.Pid())
	for _, c := range held {
		c.Close()
	}
	b.ReportMetric(float64(listeners-before)/count/1024, "KiB/listener")
	b.ReportMetric(float64(conns-listeners)/count/1024, "KiB/conn")
	b.ReportMetric(0, "ns/op")
}

// rss is a process's resident memory in bytes.
func rss(b *testing.B, pid int) int64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
