package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
)

// LatestTTL is how long a replica's or route's latest sample is kept
// without a newer one: after that it is gone (stopped, or moved).
const LatestTTL = 5 * time.Minute

// RemoveNode removes a node's archives and the latest samples taken from
// it. Its replicas' files go with their app, or with the collector.
func (s *Store) RemoveNode(name string) error {
	if !validName(name) {
		return errs.Invalid("node", "%q is not a valid node name", name)
	}
	s.mu.Lock()
	for k, l := range s.latest {
		if l.Node == name {
			delete(s.latest, k)
		}
	}
	s.mu.Unlock()
	return s.remove(key{kindNode, name})
}

// RemoveApp removes an app's archives, its replicas' and the latest
// samples of its replicas and routes.
func (s *Store) RemoveApp(name string) error {
	if !validName(name) {
		return errs.Invalid("app", "%q is not a valid app name", name)
	}
	s.mu.Lock()
	for k, l := range s.latest {
		if l.App == name {
			delete(s.latest, k)
		}
	}
	s.mu.Unlock()
	err := s.remove(key{kindApp, name})
	ents, rerr := os.ReadDir(filepath.Join(s.dir, kindDirs[kindReplica]))
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("remove metrics of app %q: %w", name, rerr))
	}
	for _, e := range ents {
		if AppOf(e.Name()) == name {
			err = errors.Join(err, s.remove(key{kindReplica, e.Name()}))
		}
	}
	return err
}

// RemoveRoute removes a route host's archive and its latest sample (its
// app was removed).
func (s *Store) RemoveRoute(host string) error {
	if !validName(host) {
		return errs.Invalid("route", "%q is not a valid route host", host)
	}
	k := key{kindRoute, host}
	s.mu.Lock()
	delete(s.latest, k)
	s.mu.Unlock()
	return s.remove(k)
}

// remove unmaps and deletes one entity's file; missing is fine.
func (s *Store) remove(k key) error {
	s.mu.Lock()
	t := s.tables[k]
	delete(s.tables, k)
	path := filepath.Join(s.dir, kindDirs[k.kind], k.name)
	err := os.Remove(path)
	s.mu.Unlock()
	if t != nil {
		t.drop()
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove metrics: %w", err)
	}
	return nil
}

// drop unmaps without syncing: the file is gone.
func (t *table) drop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b != nil {
		unix.Munmap(t.b)
		t.b = nil
	}
}

// GC removes the replica files whose newest sample is older than what
// their spec spans (the replica is long gone: nothing in them is still
// kept), and forgets replica and route latest samples older than
// LatestTTL. It returns how many files it removed.
func (s *Store) GC(now time.Time) (int, error) {
	span := time.Duration(0)
	for _, a := range s.o.ReplicaSpec {
		span = max(span, a.Span())
	}
	s.mu.Lock()
	s.pruneLatest(now)
	s.mu.Unlock()
	dir := filepath.Join(s.dir, kindDirs[kindReplica])
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("metrics gc: %w", err)
	}
	removed := 0
	for _, e := range ents {
		newest, err := fileNewest(filepath.Join(dir, e.Name()))
		if err != nil || !validName(e.Name()) {
			continue // a temporary file, or one read next time
		}
		if newest == 0 || now.Sub(unixTime(newest)) <= span {
			continue
		}
		if err := s.remove(key{kindReplica, e.Name()}); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

func (s *Store) pruneLatest(now time.Time) {
	for k, l := range s.latest {
		if k.kind != kindNode && now.Sub(l.Time) > LatestTTL {
			delete(s.latest, k)
		}
	}
}

// fileNewest reads a file's newest sample time with one pread: a mapped
// file's page cache is the mapping, so this sees what Add wrote.
func fileNewest(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], 16); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

func (s *Store) gcLoop() {
	defer close(s.done)
	if s.o.GCInterval < 0 {
		<-s.stop
		return
	}
	tick := time.NewTicker(s.o.GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			n, err := s.GC(s.o.Now())
			if err != nil {
				s.o.Log.Warn("metrics gc", "err", err)
			}
			if idle := s.unmapIdle(); n > 0 || idle > 0 {
				s.o.Log.Info("metrics gc", "removed", n, "unmapped", idle)
			}
		}
	}
}
