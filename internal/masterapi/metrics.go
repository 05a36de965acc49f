package masterapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// Metrics kinds: what a series belongs to.
const (
	MetricsNode    = "node"
	MetricsApp     = "app"
	MetricsReplica = "replica"
	MetricsRoute   = "route"
)

// Value is a metric value that may be unknown: NaN in Go, null in JSON.
type Value float64

// MarshalJSON writes NaN and infinities as null.
func (v Value) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = Value(math.NaN())
		return nil
	}
	// The decoder hands over a valid JSON literal: a number parses as
	// ParseFloat reads it (a history holds hundreds of thousands, and a
	// nested json.Unmarshal per value was most of reading one).
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("metric value %.20s: want a number or null", b)
	}
	*v = Value(f)
	return nil
}

// MetricsQuery asks for the history of one thing's series:
// GET /v1/metrics/{kind}/{name}?since=&until=&step=&points=.
type MetricsQuery struct {
	Kind, Name string
	Since      time.Time // zero: 24 h before Until
	Until      time.Time // zero: now
	// Step asks for at least this step (the archive whose step is the
	// smallest not below it); zero: the finest that gives at most Points.
	Step   time.Duration
	Points int // at most this many points per series; zero: 600
}

// Metrics is the history of one thing's series, read from its round-robin
// archives. An app's series are its replicas' fed into one archive: each
// step's avg is the mean over its replicas' samples, min and max the
// extremes among them (a replica with twice the others' memory shows as
// the max); its "replicas" field counts the replicas sampled. Times are the starts of the steps (Unix seconds), and for each
// field Avg, Min and Max hold one value per step (null: nothing was sampled
// in that step).
type Metrics struct {
	Kind   string          `json:"kind"`
	Name   string          `json:"name"`
	Step   float64         `json:"step"` // seconds
	Times  []int64         `json:"times"`
	Fields []nodeapi.Field `json:"fields"`
	Avg    [][]Value       `json:"avg"`
	Min    [][]Value       `json:"min"`
	Max    [][]Value       `json:"max"`
}

// Latest is the newest sample of one node, replica or route, as kept in the
// master's memory (GET /v1/metrics/latest): what moat top, alerts and the
// Prometheus endpoint read. An app's totals are the sums over its
// replicas' entries.
type Latest struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Node is where it was sampled (for a node, its own name); App is the
	// app of a replica or route.
	Node   string    `json:"node,omitempty"`
	App    string    `json:"app,omitempty"`
	Time   time.Time `json:"time"`
	Values []Value   `json:"values"` // in nodeapi.FieldsOf order of its kind
}

// Value is the named field, NaN when not known.
func (l Latest) Value(field string) float64 {
	kind := map[string]byte{MetricsNode: nodeapi.GroupNode, MetricsReplica: nodeapi.GroupContainer, MetricsRoute: nodeapi.GroupRoute}[l.Kind]
	for i, f := range nodeapi.FieldsOf(kind) {
		if f.Name == field && i < len(l.Values) {
			return float64(l.Values[i])
		}
	}
	return math.NaN()
}

// MetricsHistory reads a thing's history.
func (c *Client) MetricsHistory(ctx context.Context, q MetricsQuery) (Metrics, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Step > 0 {
		v.Set("step", q.Step.String())
	}
	if q.Points > 0 {
		v.Set("points", strconv.Itoa(q.Points))
	}
	var out Metrics
	return out, c.Call(ctx, http.MethodGet, "/v1/metrics/"+esc(q.Kind)+"/"+esc(q.Name)+"?"+v.Encode(), nil, &out)
}

// MetricsLatest reads the newest sample of every node, replica and route
// the caller may see.
func (c *Client) MetricsLatest(ctx context.Context) ([]Latest, error) {
	var out []Latest
	return out, c.Call(ctx, http.MethodGet, "/v1/metrics/latest", nil, &out)
}
