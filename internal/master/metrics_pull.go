package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/metrics/ring"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// The metrics puller: while a node's connection is up, the master pulls
// the records of the node's metrics ring (GET /v1/metrics) from a cursor
// kept per node in the database, decodes each and hands it to the
// archive. The request long-polls: a node that has nothing new holds it
// up to pullWait, so an idle node costs one request per sample (or per
// pullWait), never a poll loop. After any outage (the master stopped, the
// node unreachable) the loop starts again from the stored cursor and
// backfills page by page; records the ring no longer holds are a gap,
// logged and recorded as an event.
//
// A node is not trusted: what one page may make the master do is bounded
// (records asked for, bytes read, record size, pages per second), a record
// that does not decode is skipped and counted, never stopping the loop,
// and the archive refuses groups naming another node or a replica not
// placed on this one.

// Pull bounds.
const (
	// pullPage is how many records one request asks for (at most
	// nodeapi.MaxMetricsPage): a 10 s node's hour is 360 samples, two
	// pages.
	pullPage = 256
	// pullWait is how long a node may hold a request when it has
	// nothing after the cursor.
	pullWait = 30 * time.Second
	// pullMaxBytes bounds the answer the master reads for one page
	// (256 records of a 4 KiB ring slot, base64 in JSON, are 1.4 MB),
	// and pullMaxRecord one record: no more than a ring slot holds.
	pullMaxBytes  = 4 << 20
	pullMaxRecord = ring.DefaultSlotSize
	// A node answers at most pullRate pages a second while backfilling
	// (256 × 20 = 5,120 records/s: a day at 10 s in under two seconds),
	// and when caught up (a page not full) no more than one request per
	// pullIdleGap, whatever it answers.
	pullRate    = 20
	pullIdleGap = time.Second
	// A failed request is tried again after pullRetry, doubling to
	// pullRetryMax while it keeps failing.
	pullRetry    = time.Second
	pullRetryMax = 30 * time.Second
	// Gaps are recorded in the event log at most once per gapEvery per
	// node (the others are counted, and named in the next).
	gapEvery = time.Minute
)

// MetricsSink takes the records pulled from nodes: the master's metrics
// archive (internal/metrics/archive). Ingest must keep a node's records
// under that node only.
type MetricsSink interface {
	Ingest(node string, rec nodeapi.MetricsRecord) error
}

// PullStat is where the metrics pull of one node stands (PullStats).
// Counters are since the master started.
type PullStat struct {
	Node   string `json:"node"`
	Cursor uint64 `json:"cursor"` // the last sequence ingested
	Newest uint64 `json:"newest"` // the newest the node said it holds
	Lag    uint64 `json:"lag"`    // records behind: Newest - Cursor
	// Behind is how old the newest sample ingested is (0: none yet).
	Behind      time.Duration `json:"behind"`
	LastPull    time.Time     `json:"lastPull,omitzero"` // the last page answered
	Bytes       int64         `json:"bytes"`             // answer bytes read
	Records     int64         `json:"records"`           // records ingested
	Undecodable int64         `json:"undecodable"`       // records skipped: not a record
	Refused     int64         `json:"refused"`           // records the archive refused (in part)
	Gaps        int64         `json:"gaps"`              // pages that said records were lost
	Lost        uint64        `json:"lost"`              // records lost in gaps, as far as known
	Errors      int64         `json:"errors"`            // requests that failed
}

// pullStats is an agent's puller state and figures.
type pullStats struct {
	mu     sync.Mutex
	loaded bool // cursor was read from the database
	st     PullStat
	newest time.Time // of the newest sample ingested
	// gaps not yet in the event log, and when the last one went there
	unlogged  int
	lostSince uint64
	gapAt     time.Time

	budget recordBudget // records the node may still send (pull_budget.go)
}

// PullStats are the figures of every node's metrics pull, by node name:
// lag, last pull, bytes (for the Prometheus endpoint and moat top).
func (m *Master) PullStats() []PullStat {
	m.mu.Lock()
	agents := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		agents = append(agents, a)
	}
	m.mu.Unlock()
	out := make([]PullStat, 0, len(agents))
	now := time.Now()
	for _, a := range agents {
		a.pull.mu.Lock()
		st := a.pull.st
		if !a.pull.newest.IsZero() {
			st.Behind = now.Sub(a.pull.newest)
		}
		a.pull.mu.Unlock()
		st.Node = a.name
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y PullStat) int {
		switch {
		case x.Node < y.Node:
			return -1
		case x.Node > y.Node:
			return 1
		}
		return 0
	})
	return out
}

// metricsSink is what the puller feeds: the archive (nil: none).
func (m *Master) metricsSink() MetricsSink {
	if s := m.MetricsStore(); s != nil {
		return certSink{s, m} // route samples' certificate expiry noted per edge (alerts_certs.go)
	}
	return nil
}

// forgetMetricsCursor forgets a removed node's cursor: a node added again
// under its name (perhaps another machine) is pulled from its ring's start.
func (m *Master) forgetMetricsCursor(ctx context.Context, node string) {
	m.cursors.forget(node)
	if err := m.db.RemoveMetricsCursor(ctx, node); err != nil {
		m.log.Warn("metrics cursor not removed", "node", node, "err", err)
	}
}

// pullMetrics is the agent's pull loop while its connection is up (one
// session of agent.run). Without an archive there is nothing to pull for.
func (m *Master) pullMetrics(ctx context.Context, a *agent) {
	sink := m.metricsSink()
	if sink == nil {
		return
	}
	p := &puller{
		node: a.name, http: a.conn.HTTP(), sink: sink, stats: &a.pull, log: a.log,
		load: func(ctx context.Context) (uint64, error) { return m.db.MetricsCursor(ctx, a.name) },
		save: func(_ context.Context, seq uint64, soon bool) error {
			m.cursors.set(a.name, seq, soon)
			return nil
		},
		event: m.RecordEvent,
	}
	p.run(ctx)
}

// puller pulls one node's ring.
type puller struct {
	node  string
	http  *http.Client // requests reach the node's API (an rpc session)
	sink  MetricsSink
	stats *pullStats
	log   *slog.Logger
	load  func(ctx context.Context) (uint64, error)
	// save records the cursor after a page; soon: a backfill page (the
	// first of a session, or one after a full page), to be written at
	// once rather than with the next batch.
	save  func(ctx context.Context, seq uint64, soon bool) error
	event func(masterapi.Event)
	page  int // records asked for (pullPage; less after an answer too big)

	// The records budget (pull_budget.go); zero: pullBudgetBurst and
	// pullBudgetRate.
	burst, rate float64
}

// run pulls until ctx ends.
func (p *puller) run(ctx context.Context) {
	cursor, err := p.cursor(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("metrics pull: cursor not read", "err", err)
		if !sleep(ctx, pullRetryMax) {
			return
		}
		cursor, err = p.cursor(ctx)
	}
	if p.page == 0 {
		p.page = pullPage
	}
	retry := pullRetry
	var last time.Time // when the last request was sent
	backfill := true   // the first page of a session, or one after a full page
	for ctx.Err() == nil {
		pace := time.Second / pullRate
		if !sleep(ctx, time.Until(last.Add(pace))) {
			return
		}
		if !sleep(ctx, p.stats.budget.wait(time.Now(), p.budget())) {
			return
		}
		last = time.Now()
		next, full, err := p.pullPage(ctx, cursor)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.stats.mu.Lock()
			p.stats.st.Errors++
			p.stats.mu.Unlock()
			if errors.Is(err, errPageTooBig) && p.page > 1 {
				p.page = max(1, p.page/2)
				p.log.Warn("metrics pull: page too big; asking for fewer records", "records", p.page, "err", err)
				continue
			}
			if errors.Is(err, errPageTooBig) {
				// One record alone is too big: it is skipped, as lost.
				p.gap(cursor, cursor+1, 1, "a record bigger than the master reads ("+err.Error()+")")
				next = cursor + 1
			} else {
				p.log.Warn("metrics pull failed; trying again", "in", retry, "err", err)
				if !sleep(ctx, retry) {
					return
				}
				retry = min(2*retry, pullRetryMax)
				continue
			}
		}
		retry = pullRetry
		if next != cursor {
			p.stats.mu.Lock()
			p.stats.st.Cursor = next
			p.stats.mu.Unlock()
			if err := p.save(ctx, next, backfill); err != nil && ctx.Err() == nil {
				p.log.Warn("metrics pull: cursor not saved", "seq", next, "err", err)
			}
			cursor = next
		}
		backfill = full
		if !full {
			p.page = pullPage
			if !sleep(ctx, time.Until(last.Add(pullIdleGap))) {
				return
			}
		}
	}
}

// budget is the puller's records budget: burst and rate.
func (p *puller) budget() budgetLimits {
	l := budgetLimits{p.burst, p.rate}
	if l.burst <= 0 {
		l.burst = pullBudgetBurst
	}
	if l.rate <= 0 {
		l.rate = pullBudgetRate
	}
	return l
}

// cursor is where the pull stands: the agent's figure, or the stored one
// when the agent starts.
func (p *puller) cursor(ctx context.Context) (uint64, error) {
	p.stats.mu.Lock()
	if p.stats.loaded {
		c := p.stats.st.Cursor
		p.stats.mu.Unlock()
		return c, nil
	}
	p.stats.mu.Unlock()
	c, err := p.load(ctx)
	if err != nil {
		return 0, err
	}
	p.stats.mu.Lock()
	p.stats.loaded, p.stats.st.Cursor = true, c
	p.stats.mu.Unlock()
	return c, nil
}

var errPageTooBig = errors.New("metrics page too big")

// fetch asks the node for the records after cursor, reading at most
// pullMaxBytes of its answer.
func (p *puller) fetch(ctx context.Context, cursor uint64) (nodeapi.MetricsPage, int64, error) {
	var page nodeapi.MetricsPage
	q := url.Values{"after": {strconv.FormatUint(cursor, 10)}, "max": {strconv.Itoa(p.page)}, "wait": {pullWait.String()}}
	rctx, cancel := context.WithTimeout(ctx, pullWait+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://node/v1/metrics?"+q.Encode(), nil)
	if err != nil {
		return page, 0, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return page, 0, fmt.Errorf("GET /v1/metrics on %s: %w", p.node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return page, int64(len(b)), fmt.Errorf("GET /v1/metrics on %s: %s: %s", p.node, resp.Status, b)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, pullMaxBytes+1))
	n := int64(len(body))
	if err != nil {
		return page, n, fmt.Errorf("GET /v1/metrics on %s: %w", p.node, err)
	}
	if n > pullMaxBytes {
		return page, n, fmt.Errorf("%w: GET /v1/metrics on %s answered more than %d bytes for %d records", errPageTooBig, p.node, pullMaxBytes, p.page)
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return page, n, fmt.Errorf("GET /v1/metrics on %s: not a page: %w", p.node, err)
	}
	return page, n, nil
}

// pullPage pulls and ingests one page: the new cursor, and whether the
// page was full (more are likely waiting).
func (p *puller) pullPage(ctx context.Context, cursor uint64) (uint64, bool, error) {
	page, n, err := p.fetch(ctx, cursor)
	p.stats.mu.Lock()
	p.stats.st.Bytes += n
	p.stats.mu.Unlock()
	if err != nil {
		return cursor, false, err
	}
	p.stats.budget.spend(time.Now(), min(len(page.Raw), p.page), p.budget())
	next, res := ingestPage(p.node, cursor, p.page, page, p.sink)
	if res.gap {
		p.gap(cursor, next, res.lost, res.why)
	}
	if res.undecodable > 0 || res.refused > 0 || res.bad > 0 {
		// One line per page, however many records were bad.
		p.log.Warn("metrics pull: records skipped", "undecodable", res.undecodable, "refused", res.refused, "out of order", res.bad, "first", res.firstErr)
	}
	p.stats.mu.Lock()
	st := &p.stats.st
	st.Cursor, st.Newest = next, page.Newest
	st.Lag = 0
	if page.Newest > next {
		st.Lag = page.Newest - next
	}
	st.LastPull = time.Now()
	st.Records += int64(res.ingested)
	st.Undecodable += int64(res.undecodable)
	st.Refused += int64(res.refused)
	if res.newest.After(p.stats.newest) {
		p.stats.newest = res.newest
	}
	p.stats.mu.Unlock()
	return next, len(page.Raw) >= p.page, nil
}

// pageResult is what ingesting a page did.
type pageResult struct {
	ingested, undecodable, refused, bad int
	firstErr                            string
	newest                              time.Time // the newest record's time ingested
	gap                                 bool
	lost                                uint64 // records lost, when known (0: unknown)
	why                                 string
}

// ingestPage ingests a page answered for the records after cursor (max
// asked for) into sink and returns the new cursor: the last record's
// sequence. A gap moves the cursor to just before the node's oldest. A
// record that does not decode, or the archive refuses, is skipped;
// records beyond max, not above the cursor or out of order are ignored,
// and so is a record larger than pullMaxRecord. Nothing a page holds
// stops the pull, and the node's name is the puller's, whatever the
// records say.
func ingestPage(node string, cursor uint64, max int, page nodeapi.MetricsPage, sink MetricsSink) (uint64, pageResult) {
	var res pageResult
	if page.Gap {
		res.gap = true
		switch {
		case page.Newest == 0:
			res.why = fmt.Sprintf("the node's ring is empty and the master's cursor was at %d: made anew", cursor)
		case cursor > page.Newest:
			res.why = fmt.Sprintf("the node's ring ends at %d, before the master's cursor %d: made anew", page.Newest, cursor)
		case page.Oldest > cursor+1:
			res.lost = page.Oldest - cursor - 1
			res.why = fmt.Sprintf("the node no longer holds records %d to %d (its ring starts at %d): the master was away longer than the ring holds", cursor+1, page.Oldest-1, page.Oldest)
		default:
			res.why = fmt.Sprintf("the node says records after %d are lost", cursor)
		}
		cursor = 0
		if page.Oldest > 0 {
			cursor = page.Oldest - 1
		}
	}
	if len(page.Raw) > max {
		res.bad += len(page.Raw) - max
		page.Raw = page.Raw[:max]
	}
	for _, raw := range page.Raw {
		if raw.Seq <= cursor {
			res.bad++
			continue
		}
		cursor = raw.Seq
		if len(raw.Data) > pullMaxRecord {
			res.undecodable++
			res.note(fmt.Sprintf("record %d: %d bytes, more than %d", raw.Seq, len(raw.Data), pullMaxRecord))
			continue
		}
		rec, err := nodeapi.DecodeMetrics(raw.Data)
		if err != nil {
			res.undecodable++
			res.note(fmt.Sprintf("record %d: %v", raw.Seq, err))
			continue
		}
		// A node's own group is the node's the connection reaches,
		// whatever it calls itself (the daemon says "node").
		for i := range rec.Groups {
			if rec.Groups[i].Kind == nodeapi.GroupNode {
				rec.Groups[i].Name = node
			}
		}
		if err := sink.Ingest(node, rec); err != nil {
			res.refused++
			res.note(fmt.Sprintf("record %d: %v", raw.Seq, err))
		}
		res.ingested++
		if rec.Time.After(res.newest) {
			res.newest = rec.Time
		}
	}
	return cursor, res
}

func (r *pageResult) note(s string) {
	if r.firstErr == "" {
		r.firstErr = s
	}
}

// gap logs a gap and records it as an event (at most one per gapEvery;
// the others are counted and named in the next).
func (p *puller) gap(from, to, lost uint64, why string) {
	p.log.Warn("metrics lost", "cursor", from, "resumes after", to, "records", lost, "why", why)
	p.stats.mu.Lock()
	p.stats.st.Gaps++
	p.stats.st.Lost += lost
	p.stats.unlogged++
	p.stats.lostSince += lost
	now := time.Now()
	if now.Sub(p.stats.gapAt) < gapEvery {
		p.stats.mu.Unlock()
		return
	}
	n, lostAll := p.stats.unlogged, p.stats.lostSince
	p.stats.unlogged, p.stats.lostSince, p.stats.gapAt = 0, 0, now
	p.stats.mu.Unlock()
	msg := "samples lost: " + why
	if lost > 0 {
		msg = fmt.Sprintf("%d records of samples lost: %s", lost, why)
	}
	if n > 1 {
		msg += fmt.Sprintf(" (%d gaps since the last recorded, %d records in all)", n, lostAll)
	}
	p.event(masterapi.Event{Kind: masterapi.EventMetricsGap, Node: p.node, Message: msg})
}

// sleep waits d (nothing when d ≤ 0); false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cursorFlushEvery: the cursors pulls moved are written together, in one
// transaction, this often (a thousand nodes sampling every 10 s move a
// hundred a second). A master killed loses at most this much of the
// cursors' progress: it pulls those records again, and the archive keeps
// each sample once.
const cursorFlushEvery = time.Second

// cursorBook holds the cursors waiting to be written.
type cursorBook struct {
	mu    sync.Mutex
	dirty map[string]uint64
	soon  chan struct{} // a backfill page: write now
}

func (b *cursorBook) init() {
	b.mu.Lock()
	if b.soon == nil {
		b.soon = make(chan struct{}, 1)
	}
	b.mu.Unlock()
}

func (b *cursorBook) set(node string, seq uint64, soon bool) {
	b.init()
	b.mu.Lock()
	if b.dirty == nil {
		b.dirty = map[string]uint64{}
	}
	b.dirty[node] = seq
	b.mu.Unlock()
	if soon {
		select {
		case b.soon <- struct{}{}:
		default:
		}
	}
}

func (b *cursorBook) forget(node string) {
	b.mu.Lock()
	delete(b.dirty, node)
	b.mu.Unlock()
}

func (b *cursorBook) take() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.dirty
	b.dirty = nil
	return d
}

// runCursors writes the cursors until ctx ends, and once more then.
func (m *Master) runCursors(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	b := &m.cursors
	b.init()
	tick := time.NewTicker(cursorFlushEvery)
	defer tick.Stop()
	flush := func(ctx context.Context) {
		if d := b.take(); len(d) > 0 {
			if err := m.db.SetMetricsCursors(ctx, d); err != nil {
				m.log.Warn("metrics cursors not saved", "nodes", len(d), "err", err)
			}
		}
	}
	for {
		select {
		case <-tick.C:
			flush(ctx)
		case <-b.soon:
			flush(ctx)
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			flush(wctx)
			cancel()
			return
		}
	}
}
