// Package keepalive tells a dead SSH peer from a slow one, for both ends
// moat holds connections from: the master to its nodes (package sshx) and a
// node fetching image blobs from another (package node). Anything that
// arrives from the peer counts as a sign of life, not only answers to
// probes, so a busy peer is never probed and a probe that is slow to come
// back is not a miss while other bytes flow. A quiet connection is probed
// with keepalive@openssh.com; the peer is gone when nothing has arrived
// for DownAfter.
package keepalive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrSilent says the peer sent nothing for DownAfter.
var ErrSilent = errors.New("nothing heard from the peer")

// maxProbes bounds the probes in flight on one connection: a peer that has
// stopped answering is not sent an unbounded pile.
const maxProbes = 16

// Heard is the time the last bytes arrived on a connection, on the
// monotonic clock: a step of the wall clock (NTP, an operator) must
// neither make every peer look silent for DownAfter at once nor move back
// the last sign of life that sshx.Delivery's "surely undelivered" rests on.
type Heard struct {
	at   atomic.Int64 // since epoch
	late atomic.Int64 // since epoch: when Watch last ran late (see Watch)
	rtt  atomic.Int64 // the last probe's round trip (0: none answered yet)
}

// NewHeard starts the clock now: a connection just made counts as heard.
func NewHeard() *Heard {
	h := new(Heard)
	h.Touch()
	return h
}

// epoch is the origin of Heard's times; time.Since(epoch) reads the
// monotonic clock.
var epoch = time.Now()

// Touch records that the peer was heard now.
func (h *Heard) Touch() { h.at.Store(int64(time.Since(epoch))) }

// Quiet is how long ago the peer was last heard.
func (h *Heard) Quiet() time.Duration { return time.Since(epoch) - time.Duration(h.at.Load()) }

// Last is when the peer was last heard, with a monotonic reading.
func (h *Heard) Last() time.Time { return epoch.Add(time.Duration(h.at.Load())) }

// SilentSince is when the peer's silence began as far as probes tell: the
// last time it was heard, or later, when Watch last ran late (it probed
// on schedule only since).
func (h *Heard) SilentSince() time.Time {
	return epoch.Add(time.Duration(max(h.at.Load(), h.late.Load())))
}

// RoundTrip is the last answered probe's round trip; 0 when no probe has
// been answered (a busy connection is never probed).
func (h *Heard) RoundTrip() time.Duration { return time.Duration(h.rtt.Load()) }

// Wrap returns conn, recording in h every read that returns bytes.
func (h *Heard) Wrap(conn net.Conn) net.Conn { return heardConn{Conn: conn, heard: h} }

type heardConn struct {
	net.Conn
	heard *Heard
}

func (c heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard.Touch()
	}
	return n, err
}

// Config says when to probe and when to give up.
type Config struct {
	Interval  time.Duration // probe once the connection has been quiet this long
	DownAfter time.Duration // the peer is gone after this long without a byte
	// Beat, if set, is the clock: it returns a channel closed at the next
	// check. The master shares one across all its nodes, so it wakes once
	// per interval, not once per node. Nil: a ticker at Interval.
	Beat func() <-chan struct{}
}

// Watch probes client until nothing has been heard for DownAfter (an error
// wrapping ErrSilent), the connection closes, or ctx ends, and says which.
// It does not close client.
func Watch(ctx context.Context, client *ssh.Client, heard *Heard, cfg Config) error {
	var tick <-chan time.Time
	if cfg.Beat == nil {
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	closed := make(chan error, 1)
	go func() { closed <- client.Wait() }()
	var probes atomic.Int32
	looked := time.Now() // when the loop last ran
	for {
		var beat <-chan struct{}
		if cfg.Beat != nil {
			beat = cfg.Beat()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-closed:
			return fmt.Errorf("connection closed: %v", err)
		case <-beat:
		case <-tick:
		}
		// A watcher that ran late (its process stopped, starved or
		// swapped) sent no probe meanwhile, so sshx.Delivery's margin (a
		// probe within two intervals of silence) does not hold from
		// before now: SilentSince moves here. DownAfter still counts
		// from the last byte heard.
		now := time.Now()
		if now.Sub(looked) > cfg.Interval+cfg.Interval/4 {
			heard.late.Store(int64(now.Sub(epoch)))
		}
		looked = now
		quiet := heard.Quiet()
		if quiet >= cfg.DownAfter {
			return fmt.Errorf("%w for %s", ErrSilent, quiet.Round(100*time.Millisecond))
		}
		if quiet < cfg.Interval || probes.Load() >= maxProbes {
			continue
		}
		probes.Add(1)
		go func() {
			// Any reply, even "unknown request", proves the peer alive;
			// its bytes are counted as they are read.
			sent := time.Now()
			if _, _, err := client.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				heard.rtt.Store(int64(max(time.Since(sent), 1)))
			}
			probes.Add(-1)
		}()
	}
}
