package master_test

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/wire"
)

// fakeNodes are SSH servers in the test process, one listener per
// simulated node, that accept the master's key and serve each node's API
// (simNode) on "rpc" sessions, as a node's gate does.
type fakeNodes struct {
	hostKey ssh.Signer
	addrs   []string
	nodes   []*simNode // by index, as addrs
	stats   simStats
}

func startFakeNodes(b testing.TB, n int, master ssh.PublicKey) *fakeNodes {
	hk, err := sshkey.GenerateKey(filepath.Join(b.TempDir(), "host"), "fake")
	if err != nil {
		b.Fatal(err)
	}
	f := &fakeNodes{hostKey: hk}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if sshkey.AuthorizedKey(key) == sshkey.AuthorizedKey(master) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hk)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		node := newSimNode(simName(i), &f.stats)
		f.addrs = append(f.addrs, ln.Addr().String())
		f.nodes = append(f.nodes, node)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go f.serve(c, cfg, node)
			}
		}()
	}
	return f
}

func (f *fakeNodes) serve(c net.Conn, cfg *ssh.ServerConfig, node *simNode) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go func() {
		for r := range reqs {
			if r.Type == "keepalive@openssh.com" {
				f.stats.keepalives.Add(1)
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
					go serveRPC(ch, node)
				}
			}
		}()
	}
}

// serveRPC serves the node's API on one rpc session: HTTP/1.1 or, as the
// master speaks it, HTTP/2 without TLS.
func serveRPC(ch ssh.Channel, node *simNode) {
	(&http.Server{Handler: node.routes(), Protocols: wire.Protocols()}).Serve(&oneConn{conn: chanConn{ch}})
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
