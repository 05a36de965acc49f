// Package prom exposes the master's state in the Prometheus text format:
// nodes, apps, replicas and edge routes, with the newest sample of each,
// and the master's own health (SSH connections, metrics pull, store size),
// read when scraped by a Collector over a Snapshot the master takes then
// (no goroutine keeps gauges in sync); reconcile and deploy durations are
// real histograms (Timings) the master observes where they happen. It
// serves them on the master's API and on a listener of its own, loopback
// TCP or a unix socket (Listen), and knows nothing of the master itself.
package prom

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatcloud/moat/internal/masterapi"
)

// Snapshot is what a scrape shows: the master's state at one moment.
type Snapshot struct {
	Nodes    []masterapi.Node
	Apps     []masterapi.App
	Replicas []masterapi.Replica
	// Latest is the newest sample of each node, replica and route; a
	// replica's or route's App is the app's name in its Tenant.
	Latest []Sample
	// SSH is the master's held connection to each node.
	SSH []Conn
	// Pulls is the metrics pull from each node.
	Pulls []Pull
	// Ingest counts the sample groups the master's history took and
	// turned away.
	Ingest Ingest
	// Files are the sizes of the master's state on disk, by name
	// (master.db, master.db-wal, metrics).
	Files map[string]int64
}

// Sample is the newest sample of one node, replica or route, with the
// tenant of its app (the master's, never the node's word).
type Sample struct {
	masterapi.Latest
	Tenant string
}

// Conn is the master's SSH connection to a node.
type Conn struct {
	Node  string
	State string    // up, down, connecting
	Since time.Time // in this state since
	// Connects counts the times it came up; RoundTrip is the last
	// keepalive's round trip (0: not known).
	Connects  int64
	RoundTrip time.Duration
}

// Pull is how the master's pull of a node's samples stands; counters
// since the master started.
type Pull struct {
	Node string
	// Behind is the age of the newest sample ingested (0: none yet);
	// Lag the records the node holds that the master has not read.
	Behind   time.Duration
	Lag      uint64
	LastPull time.Time // the last page answered
	Bytes    int64     // answer bytes read
	Records  int64     // records ingested
	// Records skipped (not records), refused by the history (in part),
	// pages saying records were lost and how many, failed requests.
	Undecodable, Refused, Gaps, Errors int64
	Lost                               uint64
}

// Ingest is what the master's history did with the sample groups nodes
// sent, since the master started: taken, dropped (not newer than the
// last), refused (another node's, a future time, a bad name), ignored
// (unknown routes or kinds); and the archives it holds.
type Ingest struct {
	Taken, Dropped, Refused, Ignored uint64
	Archives                         int
}

// Source takes a snapshot of the master's state.
type Source func(ctx context.Context) (Snapshot, error)

// collector reads the master's state when gathered, within ctx (the
// scrape's request).
type collector struct {
	ctx    context.Context
	source Source
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs() {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.source(c.ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(scrapeErrorDesc, err)
		return
	}
	emit(s, ch)
}
