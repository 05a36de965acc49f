package prom

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timings are the master's own histograms, observed where the work
// happens: each reconcile pass, and each rollout judged; and the bound on
// its scrapes at once, shared by every Handler given them.
type Timings struct {
	all       []prometheus.Collector // these and the Go and process collectors
	reconcile prometheus.Histogram
	errors    prometheus.Counter
	deploys   *prometheus.HistogramVec
	scrapes   chan struct{} // scrapes under way (Handler), up to MaxScrapes
}

// NewTimings makes the master's histograms, and a registry holding them
// with the Go runtime's and the process's collectors.
func NewTimings() *Timings {
	t := &Timings{
		scrapes: make(chan struct{}, MaxScrapes),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "moat_reconcile_duration_seconds", Help: "Time a reconcile pass took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moat_reconcile_errors_total", Help: "Reconcile passes that ended in an error.",
		}),
		deploys: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "moat_deploy_duration_seconds", Help: "Time from a revision's creation to its rollout's verdict, by outcome (deployed, failed).",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600},
		}, []string{"outcome"}),
	}
	t.all = []prometheus.Collector{t.reconcile, t.errors, t.deploys,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for _, o := range []string{"deployed", "failed"} {
		t.deploys.WithLabelValues(o) // shown from the start, at 0
	}
	return t
}

// Reconciled observes a reconcile pass that took d and failed or not.
func (t *Timings) Reconciled(d float64, failed bool) {
	if t == nil {
		return
	}
	t.reconcile.Observe(d)
	if failed {
		t.errors.Inc()
	}
}

// Deployed observes a rollout judged (outcome deployed or failed) d
// seconds after its revision was made.
func (t *Timings) Deployed(outcome string, d float64) {
	if t == nil {
		return
	}
	t.deploys.WithLabelValues(outcome).Observe(d)
}

// MaxScrapes bounds the scrapes served at once by one Handler; more are
// answered 503 at once. A scrape of a big cluster costs a third of a
// second of CPU, and loopback TCP is open to every local user.
const MaxScrapes = 2

// Handler serves the Prometheus exposition of the snapshot source takes
// at each request, with t's histograms and collectors (t may be nil).
func Handler(source Source, t *Timings) http.Handler {
	inFlight := make(chan struct{}, MaxScrapes)
	if t != nil {
		inFlight = t.scrapes // every handler of the master's
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
			defer func() { <-inFlight }()
		default:
			http.Error(w, fmt.Sprintf("%d scrapes under way already: try again later", MaxScrapes), http.StatusServiceUnavailable)
			return
		}
		// One registry a scrape, whose collector reads the state within
		// the request; one registry, not several gathered together,
		// which would check every series twice.
		reg := prometheus.NewRegistry()
		reg.MustRegister(collector{ctx: r.Context(), source: source})
		if t != nil {
			reg.MustRegister(t.all...)
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).ServeHTTP(w, r)
	})
}
