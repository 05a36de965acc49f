package master

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// sinkRec is what a test sink was given.
type sinkRec struct {
	node string
	rec  nodeapi.MetricsRecord
}

type testSink struct {
	mu   sync.Mutex
	got  []sinkRec
	fail func(nodeapi.MetricsRecord) error
}

func (s *testSink) Ingest(node string, rec nodeapi.MetricsRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, sinkRec{node, rec})
	if s.fail != nil {
		return s.fail(rec)
	}
	return nil
}

func (s *testSink) records() []sinkRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRec(nil), s.got...)
}

var pullT0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// record encodes one sample: the node's group (named as the daemon names
// it) and the named containers'.
func record(t testing.TB, at time.Time, node string, containers ...string) []byte {
	t.Helper()
	groups := []nodeapi.MetricsGroup{{Kind: nodeapi.GroupNode, Name: node, Values: []float64{0.5, 1}}}
	for _, c := range containers {
		groups = append(groups, nodeapi.MetricsGroup{Kind: nodeapi.GroupContainer, Name: c, Values: []float64{0.1, 1 << 20}})
	}
	recs, err := nodeapi.EncodeMetrics(at, groups, 4000)
	if err != nil || len(recs) != 1 {
		t.Fatalf("encode: %d records, %v", len(recs), err)
	}
	return recs[0]
}

func raws(t testing.TB, from, to uint64) []nodeapi.RawRecord {
	var out []nodeapi.RawRecord
	for s := from; s <= to; s++ {
		out = append(out, nodeapi.RawRecord{Seq: s, Data: record(t, pullT0.Add(time.Duration(s)*10*time.Second), "node", "web-1")})
	}
	return out
}

// TestIngestPage: what a page moves the cursor to and what it ingests,
// for pages a node may answer, right or wrong.
func TestIngestPage(t *testing.T) {
	garbage := []nodeapi.RawRecord{{Seq: 4, Data: []byte("not a record")}}
	cases := []struct {
		name      string
		cursor    uint64
		page      nodeapi.MetricsPage
		want      uint64
		ingested  int
		bad       int // undecodable + out of order
		gap       bool
		lost      uint64
		firstSeqs []uint64
	}{
		{"nothing new", 5, nodeapi.MetricsPage{Oldest: 1, Newest: 5}, 5, 0, 0, false, 0, nil},
		{"three new", 5, nodeapi.MetricsPage{Oldest: 1, Newest: 8, Raw: raws(t, 6, 8)}, 8, 3, 0, false, 0, []uint64{6, 7, 8}},
		{"fell off the tail", 5, nodeapi.MetricsPage{Oldest: 20, Newest: 22, Gap: true, Raw: raws(t, 20, 22)}, 22, 3, 0, true, 14, []uint64{20}},
		{"ring made anew", 500, nodeapi.MetricsPage{Oldest: 1, Newest: 3, Gap: true, Raw: raws(t, 1, 3)}, 3, 3, 0, true, 0, []uint64{1}},
		{"ring empty, made anew", 500, nodeapi.MetricsPage{Gap: true}, 0, 0, 0, true, 0, nil},
		{"a garbage record is skipped", 3, nodeapi.MetricsPage{Oldest: 1, Newest: 5, Raw: append(garbage, raws(t, 5, 5)...)}, 5, 1, 1, false, 0, []uint64{5}},
		{"records not above the cursor ignored", 5, nodeapi.MetricsPage{Oldest: 1, Newest: 7, Raw: raws(t, 4, 7)}, 7, 2, 2, false, 0, []uint64{6, 7}},
		{"out of order ignored", 5, nodeapi.MetricsPage{Oldest: 1, Newest: 9, Raw: append(raws(t, 9, 9), raws(t, 7, 7)...)}, 9, 1, 1, false, 0, []uint64{9}},
		{"more than asked for cut", 0, nodeapi.MetricsPage{Oldest: 1, Newest: 10, Raw: raws(t, 1, 10)}, 4, 4, 6, false, 0, []uint64{1, 2, 3, 4}},
		{"a huge record skipped", 0, nodeapi.MetricsPage{Oldest: 1, Newest: 1, Raw: []nodeapi.RawRecord{{Seq: 1, Data: make([]byte, pullMaxRecord+1)}}}, 1, 0, 1, false, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &testSink{}
			got, res := ingestPage("n1", c.cursor, 4, c.page, sink)
			if got != c.want || res.ingested != c.ingested || res.undecodable+res.bad != c.bad || res.gap != c.gap || res.lost != c.lost {
				t.Errorf("cursor %d, %+v; want cursor %d, %d ingested, %d bad, gap %t, lost %d", got, res, c.want, c.ingested, c.bad, c.gap, c.lost)
			}
			recs := sink.records()
			for i, r := range recs {
				if r.node != "n1" || r.rec.Groups[0].Name != "n1" {
					t.Errorf("record %d went to %q with node group %q; want n1's", i, r.node, r.rec.Groups[0].Name)
				}
				if i < len(c.firstSeqs) && !r.rec.Time.Equal(pullT0.Add(time.Duration(c.firstSeqs[i])*10*time.Second)) {
					t.Errorf("record %d is of %s; want seq %d's", i, r.rec.Time, c.firstSeqs[i])
				}
			}
		})
	}
}

// TestIngestPageRefused: a record the archive refuses (another node's
// replica) is counted, and the pull goes on past it.
func TestIngestPageRefused(t *testing.T) {
	sink := &testSink{fail: func(r nodeapi.MetricsRecord) error {
		if len(r.Groups) > 1 && r.Groups[1].Name == "theirs-1" {
			return fmt.Errorf("refused")
		}
		return nil
	}}
	page := nodeapi.MetricsPage{Oldest: 1, Newest: 2, Raw: []nodeapi.RawRecord{
		{Seq: 1, Data: record(t, pullT0, "node", "theirs-1")},
		{Seq: 2, Data: record(t, pullT0.Add(10*time.Second), "node", "web-1")},
	}}
	got, res := ingestPage("n1", 0, 10, page, sink)
	if got != 2 || res.refused != 1 || res.ingested != 2 || res.firstErr == "" {
		t.Errorf("cursor %d, %+v; want 2, one refused, named", got, res)
	}
}

// FuzzIngestPage: whatever a node answers, ingesting it never panics,
// hands the sink only records under the puller's node (its own group
// named so) and moves the cursor forward unless the page says there is a
// gap.
func FuzzIngestPage(f *testing.F) {
	for _, p := range []nodeapi.MetricsPage{
		{Oldest: 1, Newest: 3, Raw: raws(f, 1, 3)},
		{Oldest: 7, Newest: 9, Gap: true, Raw: raws(f, 7, 9)},
		{Raw: []nodeapi.RawRecord{{Seq: 2, Data: []byte{1, 2, 3}}}},
	} {
		b, _ := json.Marshal(p)
		f.Add(b, uint64(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cursor uint64) {
		var page nodeapi.MetricsPage
		if json.Unmarshal(data, &page) != nil {
			return
		}
		sink := &testSink{}
		got, res := ingestPage("n1", cursor, pullPage, page, sink)
		if !page.Gap && got < cursor {
			t.Fatalf("cursor went back from %d to %d without a gap", cursor, got)
		}
		if res.ingested+res.undecodable+res.bad > len(page.Raw) {
			t.Fatalf("%+v for %d records", res, len(page.Raw))
		}
		for _, r := range sink.records() {
			if r.node != "n1" {
				t.Fatalf("a record went to %q", r.node)
			}
			for _, g := range r.rec.Groups {
				if g.Kind == nodeapi.GroupNode && g.Name != "n1" {
					t.Fatalf("a node group named %q reached the sink", g.Name)
				}
			}
		}
	})
}

// fakeRing is a node's metrics ring as GET /v1/metrics answers it, in
// memory, with knobs for what a node may do wrong.
type fakeRing struct {
	mu      sync.Mutex
	oldest  uint64
	recs    map[uint64][]byte
	newest  uint64
	fail    int // the next fail requests answer 500
	pages   int
	changed chan struct{}
}

func newFakeRing() *fakeRing {
	return &fakeRing{recs: map[uint64][]byte{}, changed: make(chan struct{})}
}

func (r *fakeRing) add(data []byte) {
	r.mu.Lock()
	r.newest++
	if r.oldest == 0 {
		r.oldest = r.newest
	}
	r.recs[r.newest] = data
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *fakeRing) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	max, _ := strconv.Atoi(q.Get("max"))
	wait, _ := time.ParseDuration(q.Get("wait"))
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		if r.fail > 0 {
			r.fail--
			r.mu.Unlock()
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		page := nodeapi.MetricsPage{Oldest: r.oldest, Newest: r.newest, Interval: nodeapi.Duration(10 * time.Second)}
		if after > r.newest || (r.oldest > 0 && after+1 < r.oldest) {
			page.Gap, after = true, r.oldest-1
		}
		for s := after + 1; s <= r.newest && len(page.Raw) < max; s++ {
			page.Raw = append(page.Raw, nodeapi.RawRecord{Seq: s, Data: r.recs[s]})
		}
		changed := r.changed
		if len(page.Raw) > 0 || page.Gap {
			r.pages++
			r.mu.Unlock()
			json.NewEncoder(w).Encode(page)
			return
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			json.NewEncoder(w).Encode(page)
			return
		case <-req.Context().Done():
			return
		}
	}
}

// pullTest runs a puller against a fake ring until ctx ends.
type pullTest struct {
	ring   *fakeRing
	sink   *testSink
	p      *puller
	mu     sync.Mutex
	saved  []uint64
	events []masterapi.Event
	done   chan struct{}
	cancel context.CancelFunc
}

func startPull(t *testing.T, ring *fakeRing, stored uint64) *pullTest {
	srv := httptest.NewServer(ring)
	pt := &pullTest{ring: ring, sink: &testSink{}, done: make(chan struct{})}
	pt.p = &puller{
		node: "n1", http: &http.Client{Transport: rewrite{srv.URL}}, sink: pt.sink, stats: &pullStats{},
		log:  slog.New(slog.DiscardHandler),
		load: func(context.Context) (uint64, error) { return stored, nil },
		save: func(_ context.Context, seq uint64, _ bool) error {
			pt.mu.Lock()
			pt.saved = append(pt.saved, seq)
			pt.mu.Unlock()
			return nil
		},
		event: func(e masterapi.Event) {
			pt.mu.Lock()
			pt.events = append(pt.events, e)
			pt.mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	pt.cancel = cancel
	go func() { defer close(pt.done); pt.p.run(ctx) }()
	t.Cleanup(func() { cancel(); <-pt.done; srv.Close() })
	return pt
}

// rewrite sends the puller's requests (to http://node/...) to a test
// server.
type rewrite struct{ base string }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	u := *r.URL
	r2 := r.Clone(r.Context())
	r2.URL, _ = r.URL.Parse(rw.base + u.RequestURI())
	r2.Host = ""
	return http.DefaultTransport.RoundTrip(r2)
}

func (pt *pullTest) waitCursor(t *testing.T, seq uint64) PullStat {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pt.p.stats.mu.Lock()
		st := pt.p.stats.st
		pt.p.stats.mu.Unlock()
		if st.Cursor == seq {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor at %d after 20s, want %d (%+v)", st.Cursor, seq, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPullerBackfill: a puller starting from a stored cursor backfills
// page by page, saving the cursor once per page, then follows new
// records as they come; failed requests are tried again.
func TestPullerBackfill(t *testing.T) {
	ring := newFakeRing()
	for s := uint64(1); s <= 600; s++ {
		ring.add(record(t, pullT0.Add(time.Duration(s)*10*time.Second), "node", "web-1"))
	}
	ring.fail = 1
	pt := startPull(t, ring, 40)
	st := pt.waitCursor(t, 600)
	if st.Lag != 0 || st.Records != 560 || st.Bytes == 0 || st.Errors != 1 {
		t.Errorf("after the backfill: %+v; want lag 0, 560 records, one error", st)
	}
	pt.mu.Lock()
	saved := append([]uint64(nil), pt.saved...)
	pt.mu.Unlock()
	if want := []uint64{296, 552, 600}; fmt.Sprint(saved) != fmt.Sprint(want) {
		t.Errorf("cursor saved at %v; want once a page, %v", saved, want)
	}
	// Following: a new record is pulled while the puller waits.
	ring.add(record(t, pullT0.Add(601*10*time.Second), "node", "web-1"))
	pt.waitCursor(t, 601)
	if n := len(pt.sink.records()); n != 561 {
		t.Errorf("%d records ingested, want 561", n)
	}
}

// TestPullerGapAndGarbage: a ring made anew (the cursor ahead of its
// newest) is a gap, recorded as an event, and the pull goes on from the
// ring's oldest; records that do not decode are skipped and counted.
func TestPullerGapAndGarbage(t *testing.T) {
	ring := newFakeRing()
	ring.add([]byte("garbage"))
	ring.add(record(t, pullT0, "evil", "web-1"))
	ring.add([]byte{1, 0, 0})
	pt := startPull(t, ring, 900)
	st := pt.waitCursor(t, 3)
	if st.Gaps != 1 || st.Undecodable != 2 || st.Records != 1 {
		t.Errorf("%+v; want a gap, 2 undecodable, 1 record", st)
	}
	pt.mu.Lock()
	events := append([]masterapi.Event(nil), pt.events...)
	pt.mu.Unlock()
	if len(events) != 1 || events[0].Kind != masterapi.EventMetricsGap || events[0].Node != "n1" {
		t.Errorf("events %+v; want one metrics gap of n1", events)
	}
	recs := pt.sink.records()
	if len(recs) != 1 || recs[0].node != "n1" || recs[0].rec.Groups[0].Name != "n1" {
		t.Errorf("ingested %+v; want one record, n1's", recs)
	}
	ring.add(record(t, pullT0.Add(10*time.Second), "node"))
	pt.waitCursor(t, 4)
}
