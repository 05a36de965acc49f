package sshx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// writes records each write apart.
type writes struct {
	net.Conn
	mu   sync.Mutex
	got  [][]byte
	seen chan struct{}
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.got = append(w.got, bytes.Clone(p))
	w.mu.Unlock()
	select {
	case w.seen <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *writes) sizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for _, b := range w.got {
		out = append(out, len(b))
	}
	return out
}

// TestCoalescer: a 4 KiB write goes out with the next one; any other
// passes at once; a 4 KiB write nothing follows goes out alone after
// holdMax.
func TestCoalescer(t *testing.T) {
	w := &writes{seen: make(chan struct{}, 1)}
	k := newCoalescer(w)
	defer k.timer.Stop()
	k.Write(make([]byte, 100))
	k.Write(make([]byte, splitWrite))
	k.Write(make([]byte, 28<<10))
	if got, want := w.sizes(), []int{100, splitWrite + 28<<10}; !slices.Equal(got, want) {
		t.Fatalf("writes of %v bytes, want %v", got, want)
	}
	k.Write(make([]byte, splitWrite))
	deadline := time.After(5 * time.Second)
	for len(w.sizes()) < 3 {
		select {
		case <-w.seen:
		case <-deadline:
			t.Fatal("a held write was never sent")
		}
	}
	if got := w.sizes()[2]; got != splitWrite || k.timedOut.Load() != 1 {
		t.Fatalf("the held write went out as %d bytes, %d by the timer", got, k.timedOut.Load())
	}
}

// TestCoalescerXCrypto: with x/crypto/ssh as it is and each AEAD cipher,
// and AES-CTR with the encrypt-then-MAC MACs (also in hardening's list),
// every 4 KiB write is followed at once by the rest of its packet (the
// timer never sends one alone), and the bytes arrive intact. With AES-GCM
// (what the client picks) packets are split, and joined again.
func TestCoalescerXCrypto(t *testing.T) {
	for _, alg := range []struct{ cipher, mac string }{
		{ssh.CipherAES128GCM, ""}, {ssh.CipherAES256GCM, ""}, {ssh.CipherChaCha20Poly1305, ""},
		{ssh.CipherAES256CTR, ssh.HMACSHA512ETM}, {ssh.CipherAES128CTR, ssh.HMACSHA256ETM},
	} {
		cipher, name := alg.cipher, alg.cipher
		var macs []string
		if alg.mac != "" {
			macs, name = []string{alg.mac}, cipher+"+"+alg.mac
		}
		t.Run(name, func(t *testing.T) {
			_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
			hostKey, err := ssh.NewSignerFromKey(hostPriv)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sum := make(chan [32]byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				cfg := &ssh.ServerConfig{NoClientAuth: true}
				cfg.AddHostKey(hostKey)
				_, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						return
					}
					go ssh.DiscardRequests(creqs)
					h := sha256.New()
					io.Copy(h, ch)
					sum <- [32]byte(h.Sum(nil))
					ch.Close()
				}
			}()
			tcp, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			tcp.SetDeadline(time.Now().Add(30 * time.Second))
			k := newCoalescer(tcp)
			sc, chans, reqs, err := ssh.NewClientConn(k, "test", &ssh.ClientConfig{
				User: "t", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
				Config: ssh.Config{Ciphers: []string{cipher}, MACs: macs},
			})
			if err != nil {
				t.Fatal(err)
			}
			client := ssh.NewClient(sc, chans, reqs)
			defer client.Close()
			ch, creqs, err := client.OpenChannel("session", nil)
			if err != nil {
				t.Fatal(err)
			}
			go ssh.DiscardRequests(creqs)
			data := make([]byte, 3<<20)
			rand.Read(data)
			h := sha256.New()
			// Writes of every size around the packet and the split.
			for off, n := 0, 1; off < len(data); off, n = off+n, n*3%70001+1 {
				end := min(off+n, len(data))
				if _, err := ch.Write(data[off:end]); err != nil {
					t.Fatal(err)
				}
				h.Write(data[off:end])
			}
			ch.CloseWrite()
			select {
			case got := <-sum:
				if got != [32]byte(h.Sum(nil)) {
					t.Fatal("the bytes arrived changed")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the server never read it all")
			}
			if n := k.timedOut.Load(); n != 0 {
				t.Fatalf("%d 4 KiB writes were not followed by the rest of their packet", n)
			}
			// ChaCha20-Poly1305's packets are written whole, never split.
			if k.joined.Load() == 0 && cipher != ssh.CipherChaCha20Poly1305 {
				t.Fatal("no packet was written in two parts: the test no longer sees x/crypto's split")
			}
			t.Logf("%d packets written as one write instead of two", k.joined.Load())
		})
	}
}
