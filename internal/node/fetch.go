package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/keepalive"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/partial"
	"github.com/moatcloud/moat/internal/sshkey"
)

// DefaultPeerKey is where enrolment puts the cluster's peer key: this
// node fetches blobs from other nodes with it, through their gate's peer
// role, which reads blobs and nothing else.
const DefaultPeerKey = nodeapi.PeerKey

// handleFetch fetches blobs from a peer node into the inbox, as if the
// master had uploaded them: a pull then verifies and stores them. An
// interrupted fetch resumes from what it wrote. Progress streams as JSON
// lines; the last says done, or why not.
func (d *Daemon) handleFetch(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.FetchRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	if len(req.Digests) > 10000 {
		return errs.Invalid("digests", "%d digests: at most 10000", len(req.Digests))
	}
	for i, s := range req.Digests {
		if err := digest.Digest(s).Validate(); err != nil || digest.Digest(s).Algorithm() != digest.SHA256 {
			return errs.Invalid(fmt.Sprintf("digests[%d]", i), "%q is not a sha256 digest", s)
		}
	}
	if len(req.Sizes) != 0 && len(req.Sizes) != len(req.Digests) {
		return errs.Invalid("sizes", "%d sizes for %d digests", len(req.Sizes), len(req.Digests))
	}
	for i, n := range req.Sizes {
		if n < 0 {
			return errs.Invalid(fmt.Sprintf("sizes[%d]", i), "negative: %d", n)
		}
	}
	hostKey, err := sshkey.ParsePublicKey(req.Peer.HostKey)
	if err != nil {
		return errs.Invalid("peer.hostKey", "%v", err)
	}
	if _, _, err := net.SplitHostPort(req.Peer.Addr); err != nil {
		return errs.Invalid("peer.addr", "%q: want host:port", req.Peer.Addr)
	}
	key, err := sshkey.LoadSigner(d.cfg.PeerKey)
	if err != nil {
		return fmt.Errorf("this node has no peer key (%s): it cannot fetch from other nodes: %w", d.cfg.PeerKey, errs.ErrUnavailable)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(p nodeapi.FetchProgress) {
		enc.Encode(p)
		if flusher != nil {
			flusher.Flush()
		}
	}
	var fetched atomic.Int64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				send(nodeapi.FetchProgress{Bytes: fetched.Load()})
			}
		}
	}()
	err = d.fetch(r.Context(), key, hostKey, req, &fetched)
	close(done)
	<-stopped // one writer of the response at a time
	if err != nil {
		d.log.Warn("fetch from peer failed", "peer", req.Peer.Name, "err", err)
		send(nodeapi.FetchProgress{Bytes: fetched.Load(), Error: err.Error()})
		return nil
	}
	d.log.Info("fetched from peer", "peer", req.Peer.Name, "blobs", len(req.Digests), "bytes", fetched.Load())
	send(nodeapi.FetchProgress{Bytes: fetched.Load(), Done: true})
	return nil
}

func (d *Daemon) fetch(ctx context.Context, key ssh.Signer, hostKey ssh.PublicKey, req nodeapi.FetchRequest, fetched *atomic.Int64) error {
	cfg := &ssh.ClientConfig{
		User: req.Peer.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: sshkey.PinnedHostKey(req.Peer.Name, hostKey), Timeout: 10 * time.Second,
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := dialer.DialContext(dctx, "tcp", req.Peer.Addr)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", req.Peer.Name, err)
	}
	heard := keepalive.NewHeard()
	sc, chans, reqs, err := ssh.NewClientConn(heard.Wrap(conn), req.Peer.Addr, cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("ssh to %s: %w", req.Peer.Name, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	// A peer that dies mid-transfer (powered off, its link cut) sends no
	// reset: without keepalives the fetch would wait for TCP to give up.
	alive, cancelAlive := context.WithCancel(ctx)
	defer cancelAlive()
	var deaf atomic.Bool
	go func() {
		err := keepalive.Watch(alive, client, heard, keepalive.Config{Interval: fetchKeepalive, DownAfter: fetchDeadAfter})
		if errors.Is(err, keepalive.ErrSilent) {
			deaf.Store(true)
			client.Close()
		}
	}()
	if err := os.MkdirAll(d.cfg.layout().InboxBlobs(), 0o700); err != nil {
		return err
	}
	for i, s := range req.Digests {
		dg := digest.Digest(s)
		if d.images.HasBlob(dg) {
			continue
		}
		size := int64(-1)
		if len(req.Sizes) > 0 {
			size = req.Sizes[i]
		}
		if err := fetchBlob(client, dg, size, req.Follow, d.cfg.layout().InboxBlob(s), fetched); err != nil {
			if deaf.Load() {
				err = fmt.Errorf("the peer stopped answering: %w", errs.ErrUnavailable)
			}
			return fmt.Errorf("blob %s from %s: %w", dg, req.Peer.Name, err)
		}
	}
	return nil
}

// fetchBlob writes what the peer sends to path.part, from the size it
// already has, and renames it when the peer's stream ends cleanly. With
// follow (and the blob's size known) the peer may still be receiving it.
// This node in turn lets others follow what it writes (package partial).
func fetchBlob(client *ssh.Client, dg digest.Digest, size int64, follow bool, path string, fetched *atomic.Int64) error {
	part := path + nodeapi.PartSuffix
	// Not O_APPEND: each byte goes to its own offset in the blob, whoever
	// else (an upload taking over) writes the file too.
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	partial.Lock(f)
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if size >= 0 && info.Size() > size {
		// Not this blob's bytes: start again.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if info, err = f.Stat(); err != nil {
			return err
		}
	}
	written := partial.NewTracker(f, info.Size())
	written.Flush()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	out, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	sess.Stderr = &stderr
	command := fmt.Sprintf("blob %s %d", dg, info.Size())
	if follow && size >= 0 {
		command += fmt.Sprintf(" %d", size)
	}
	if err := sess.Start(command); err != nil {
		return err
	}
	_, copyErr := io.Copy(&trackedWriter{f, written, info.Size()}, countingReader{out, fetched})
	written.Flush()
	waitErr := sess.Wait()
	if err := errors.Join(copyErr, waitErr); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s", msg)
		}
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(part, path)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// trackedWriter writes to a file from pos on and tells its tracker what
// is written.
type trackedWriter struct {
	f   *os.File
	t   *partial.Tracker
	pos int64
}

func (w *trackedWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.pos)
	w.t.Wrote(w.pos, int64(n))
	w.pos += int64(n)
	return n, err
}

// Keepalives on a fetch's connection: probe once it has been quiet this
// long, and count the peer gone after this long without a byte. Looser
// than the master's: a fetch that gives up wrongly costs a whole retry.
const (
	fetchKeepalive = 2 * time.Second
	fetchDeadAfter = 10 * time.Second
)
