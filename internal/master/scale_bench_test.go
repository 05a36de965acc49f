package master_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
	"github.com/moatcloud/moat/internal/wire"
)

// BenchmarkMasterScale: a real master holding 1,000 nodes over real SSH
// connections, with keepalives every 700 ms, a lease renewal every 6 s and
// an open event stream each. The nodes are SSH servers in this process on
// loopback (x/crypto/ssh) that answer the node API's calls the master
// makes while idle. Measured: the master's CPU over 65 s (long enough to
// include each node's once-a-minute self-description) and its RSS.
// Goal: ≤ 0.25 core, ≤ 300 MiB.
//
//	go test -run XXX -bench MasterScale -benchtime 1x ./internal/master
func BenchmarkMasterScale(b *testing.B) {
	const nodes = 1000
	testcluster.RequireRoot(b)
	dir := b.TempDir()
	keyPath := filepath.Join(dir, "master_ed25519")
	masterKey, err := sshx.GenerateKey(keyPath, "moat-master")
	if err != nil {
		b.Fatal(err)
	}
	fake := startFakeNodes(b, nodes, masterKey.PublicKey())
	m := testcluster.StartMaster(b, keyPath)
	ctx := context.Background()
	hostKey := sshx.AuthorizedKey(fake.hostKey.PublicKey())
	for i, addr := range fake.addrs {
		n := inventory.Node{Name: fmt.Sprintf("sim%04d", i), Addr: addr, User: "root", HostKey: hostKey, Enrolled: time.Now()}
		if err := m.Client.RegisterNode(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	for {
		ns, err := m.Client.Nodes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		up := 0
		for _, n := range ns {
			if n.State == "up" {
				up++
			}
		}
		if up == nodes {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			b.Fatalf("%d of %d nodes up after 5 minutes", up, nodes)
		}
		time.Sleep(500 * time.Millisecond)
	}
	allUp := time.Since(t0)
	time.Sleep(10 * time.Second) // settle: every node has its stream and lease
	b.ResetTimer()
	cpu0 := cpuTicks(b, m.Pid())
	start := time.Now()
	profiled := make(chan struct{})
	if out := os.Getenv("MOAT_BENCH_PROFILE"); out != "" {
		go func() {
			defer close(profiled)
			save(m.Client.HTTP, "http://master/debug/pprof/profile?seconds=60", filepath.Join(out, "cpu.pprof"))
		}()
	} else {
		close(profiled)
	}
	time.Sleep(65 * time.Second)
	<-profiled
	cores := float64(cpuTicks(b, m.Pid())-cpu0) / 100 / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(cores, "master-cores")
	b.ReportMetric(rssMiB(b, m.Pid()), "master-rss-MiB")
	b.ReportMetric(allUp.Seconds(), "all-up-s")
	b.ReportMetric(float64(fake.keepalives.Load())/float64(nodes), "keepalives/node")
	b.ReportMetric(0, "ns/op")
	if out := os.Getenv("MOAT_BENCH_PROFILE"); out != "" {
		for _, p := range []string{"heap", "goroutine"} {
			save(m.Client.HTTP, "http://master/debug/pprof/"+p, filepath.Join(out, p+".pprof"))
		}
	}
}

// save writes what url answers to a file (profiles, for a look by hand).
func save(c *http.Client, url, path string) {
	resp, err := c.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}

// cpuTicks is a process's user+system time in clock ticks (100 per second).
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssMiB(b *testing.B, pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// fakeNodes are SSH servers that act as idle moat nodes.
type fakeNodes struct {
	hostKey    ssh.Signer
	addrs      []string
	keepalives counter
}

type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) add()        { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) Load() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func startFakeNodes(b *testing.B, n int, master ssh.PublicKey) *fakeNodes {
	hk, err := sshx.GenerateKey(filepath.Join(b.TempDir(), "host"), "fake")
	if err != nil {
		b.Fatal(err)
	}
	f := &fakeNodes{hostKey: hk}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if sshx.AuthorizedKey(key) == sshx.AuthorizedKey(master) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hk)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		f.addrs = append(f.addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go f.serve(c, cfg)
			}
		}()
	}
	return f
}

func (f *fakeNodes) serve(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go func() {
		for r := range reqs {
			if r.Type == "keepalive@openssh.com" {
				f.keepalives.add()
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			for r := range requests {
				ok := r.Type == "exec" && len(r.Payload) > 4 && string(r.Payload[4:]) == "rpc"
				r.Reply(ok, nil)
				if ok {
					go serveRPC(ch)
				}
			}
		}()
	}
}

// serveRPC answers the node API calls an idle node gets from the master.
func serveRPC(ch ssh.Channel) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) })
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(nodeapi.NodeInfo{CPUs: 2, MemoryBytes: 4 << 30, OS: "simulated", Runc: "runc simulated"})
	})
	mux.HandleFunc("POST /v1/lease", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("PUT /v1/images/keep", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(nodeapi.Event{Type: "synced"})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	(&http.Server{Handler: mux, Protocols: wire.Protocols()}).Serve(&oneConn{conn: chanConn{ch}})
}

// chanConn is an SSH channel as a net.Conn.
type chanConn struct{ ssh.Channel }

func (chanConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (chanConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (chanConn) SetDeadline(t time.Time) error      { return nil }
func (chanConn) SetReadDeadline(t time.Time) error  { return nil }
func (chanConn) SetWriteDeadline(t time.Time) error { return nil }

// oneConn is a listener that yields one connection, then blocks until
// closed.
type oneConn struct {
	once sync.Once
	conn net.Conn
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConn) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	<-done
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConn) Addr() net.Addr { return &net.TCPAddr{} }
