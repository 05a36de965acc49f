// Package archive is the master's history of monitoring samples: a
// directory of per-entity archive files (nodes/<name>, apps/<name>,
// replicas/<id>, routes/<host>), each holding, RRDtool style, every field
// of its entity in one table per archive, a row per step with the average,
// minimum, maximum and sample count of each field.
//
// Why this shape: the master keeps about 100,000 series at scale (1,000
// nodes with 10 containers each), which cannot live whole in memory, and a
// sample must not rewrite a file. A file is made sparse at its fixed size
// and mapped shared; one sample writes a few cells of one row per archive
// in place (one small region of each), and the kernel writes the dirty
// pages back. Bytes per entity are fixed: they grow with the number of
// nodes and apps, never with time. The newest sample of every node, replica
// and route is also kept in memory for Latest (moat top, alerts,
// Prometheus).
//
// Data comes from nodes, which the master does not trust: names are
// bounded, samples more than two minutes in the future are refused, a
// node's group must carry the node's own name and its containers must be
// replicas the master placed on it, and a sample not after one already
// taken from the same source is dropped, so a re-delivery counts once.
package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/rrd"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Entity kinds, as stored in a file's header.
const (
	kindNode byte = 1 + iota
	kindApp
	kindReplica
	kindRoute
)

var kindDirs = [...]string{kindNode: "nodes", kindApp: "apps", kindReplica: "replicas", kindRoute: "routes"}

// ReplicaSpec is what a replica keeps: replicas come and go with every
// deploy, and their app's archives keep the long history.
var ReplicaSpec = rrd.Spec{
	{Step: 10 * time.Second, Rows: 6 * 360}, // 6 hours
	{Step: time.Minute, Rows: 2 * 24 * 60},  // 2 days
}

// MaxFuture is how far ahead of the master's clock a sample may be: a node
// whose clock runs ahead would otherwise push every archive forward.
const MaxFuture = 2 * time.Minute

// Options tune a Store; the zero value works.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ReplicaOn reports whether the master placed the replica on the node;
	// a container group that is not is refused. Nil accepts every one.
	ReplicaOn func(node, replica string) bool
	// RouteApp returns the app serving a route's host; a host it does not
	// know is ignored. Nil ignores every route group.
	RouteApp func(host string) (app string, ok bool)
	// Spec is what nodes, apps and routes keep (default rrd.Default), and
	// ReplicaSpec what replicas keep (default ReplicaSpec).
	Spec, ReplicaSpec rrd.Spec
	// GCInterval is how often replica files not written for longer than
	// their spec spans are removed (default 1 h; negative: never).
	GCInterval time.Duration
	// MaxMapped bounds the files mapped at once (default 20,000; one
	// mapping each, and vm.max_map_count is 65,530 by default): past it
	// the least recently used is unmapped, and mapped again when needed.
	MaxMapped int
	Log       *slog.Logger
}

type key struct {
	kind byte
	name string
}

// Store is the directory of archives. It is safe for concurrent use.
type Store struct {
	dir string
	o   Options

	uses   atomic.Uint64 // counts uses of tables, for the LRU
	idleAt uint64        // uses when the collector last ran: tables not used since are unmapped

	mu     sync.Mutex
	tables map[key]*table
	latest map[key]*masterapi.Latest
	stats  Stats
	closed bool

	stop chan struct{}
	done chan struct{}
}

// Stats count what Ingest did not take.
type Stats struct {
	Samples  uint64 // groups taken
	Dropped  uint64 // groups not after the newest from the same source
	Refused  uint64 // groups refused: wrong node, bad name, future time
	Ignored  uint64 // route groups of unknown hosts, unknown kinds
	Archives int    // archive files mapped
}

// Open opens (making it if needed) the store in dir. Files are mapped
// when first used.
func Open(dir string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Spec == nil {
		o.Spec = rrd.Default
	}
	if o.ReplicaSpec == nil {
		o.ReplicaSpec = ReplicaSpec
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Hour
	}
	if o.MaxMapped <= 0 {
		o.MaxMapped = 20000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	for _, sp := range []rrd.Spec{o.Spec, o.ReplicaSpec} {
		if err := sp.Validate(); err != nil {
			return nil, fmt.Errorf("open metrics store: %w", err)
		}
	}
	for _, d := range kindDirs[1:] {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("open metrics store: %w", err)
		}
	}
	s := &Store{dir: dir, o: o, tables: map[key]*table{}, latest: map[key]*masterapi.Latest{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.gcLoop()
	return s, nil
}

// Close stops the collector, syncs and unmaps every file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	tables := s.tables
	s.tables = map[key]*table{}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	var err error
	for _, t := range tables {
		err = errors.Join(err, t.close())
	}
	return err
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Archives = len(s.tables)
	return st
}

// fieldsOf is what an entity's table holds: an app's are its containers'
// and "replicas".
func fieldsOf(kind byte) []nodeapi.Field {
	switch kind {
	case kindNode:
		return nodeapi.NodeFields
	case kindApp:
		return appFields
	case kindReplica:
		return nodeapi.ContainerFields
	case kindRoute:
		return nodeapi.RouteFields
	}
	return nil
}

var appFields = append(append([]nodeapi.Field(nil), nodeapi.ContainerFields...), nodeapi.Field{Name: "replicas"})

func (s *Store) specOf(kind byte) rrd.Spec {
	if kind == kindReplica {
		return s.o.ReplicaSpec
	}
	return s.o.Spec
}

// table returns the entity's table, mapping its file, or making it when
// create is set; nil and no error when it does not exist and create is
// not set.
func (s *Store) table(k key, create bool) (*table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("metrics store closed: %w", errs.ErrUnavailable)
	}
	if t := s.tables[k]; t != nil {
		t.used.Store(s.uses.Add(1))
		return t, nil
	}
	if len(s.tables) >= s.o.MaxMapped {
		s.evictLRU()
	}
	path := filepath.Join(s.dir, kindDirs[k.kind], k.name)
	t, err := openTable(path)
	if err == nil && t.h.kind != k.kind {
		t.close()
		err = fmt.Errorf("archive %s: kind %d in a %s file: %w", path, t.h.kind, kindDirs[k.kind], errCorrupt)
	}
	if errors.Is(err, errCorrupt) && create {
		// Kept aside for a look (a name with a leading dot is never an
		// entity's), and the entity starts anew rather than never again.
		aside := filepath.Join(filepath.Dir(path), "."+k.name+".corrupt")
		s.o.Log.Warn("metrics archive corrupt, set aside", "path", path, "aside", aside, "err", err)
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("%w; setting it aside: %w", err, rerr)
		}
		err = os.ErrNotExist
	}
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, nil
		}
		h := header{kind: k.kind, fields: len(fieldsOf(k.kind)), spec: s.specOf(k.kind)}
		t, err = createTable(path, h)
	}
	if err != nil {
		return nil, err
	}
	t.used.Store(s.uses.Add(1))
	s.tables[k] = t
	return t, nil
}

// evictLRU unmaps the least recently used table (s.mu held).
func (s *Store) evictLRU() {
	var lru key
	var min uint64 = math.MaxUint64
	for k, t := range s.tables {
		if u := t.used.Load(); u < min {
			lru, min = k, u
		}
	}
	if t := s.tables[lru]; t != nil {
		delete(s.tables, lru)
		t.evict()
	}
}

// unmapIdle unmaps the tables not used since the last call: a replica
// gone, a node removed.
func (s *Store) unmapIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, t := range s.tables {
		if t.used.Load() <= s.idleAt {
			delete(s.tables, k)
			t.evict()
			n++
		}
	}
	s.idleAt = s.uses.Load()
	return n
}

// validName: what may name a file of the store (names come from nodes).
func validName(s string) bool {
	if s == "" || len(s) > nodeapi.MaxGroupName || s == "." || strings.Contains(s, "..") || strings.HasPrefix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '/' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// AppOf is the app of a replica ID: the ID without its last "-xxxxxx"
// part (see the master's newReplicaID); "" when the ID has none.
func AppOf(replica string) string {
	i := strings.LastIndexByte(replica, '-')
	if i <= 0 || len(replica)-i != 7 {
		return ""
	}
	return replica[:i]
}
