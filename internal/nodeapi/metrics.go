package nodeapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Metrics: every node samples itself, its containers and (on an edge) its
// routes every interval into a fixed-size ring on its disk
// (internal/metrics/ring); the master pulls the ring's records from a
// cursor (GET /v1/metrics), so an outage of the master loses nothing the
// ring still holds.
//
// A record is one sample time and a list of groups: the node, a container,
// an edge route. Each group is a kind, a name and its values in the fixed
// order of that kind's fields below. Fields are only ever appended: a
// reader that knows fewer ignores the rest, one that knows more reads the
// missing as unknown (NaN). One sample of a node with many containers may
// take several records of the same time, each whole on its own: the
// master ingests records one by one and never reassembles.

// Group kinds.
const (
	GroupNode      byte = 1
	GroupContainer byte = 2
	GroupRoute     byte = 3
)

// NodeFields are a node group's values, in order. Rates are per second
// over the interval; cpu is in cores (2.0: two cores busy).
var NodeFields = []Field{
	{"cpu", "cores"},
	{"load1", ""},
	{"mem_used", "bytes"},
	{"mem_total", "bytes"},
	{"disk_used", "bytes"}, // the filesystem holding the node's state
	{"disk_total", "bytes"},
	{"disk_read", "bytes/s"}, // whole physical disks (not partitions, loop, ram, dm, md)
	{"disk_write", "bytes/s"},
	{"net_rx", "bytes/s"}, // the host's interfaces but loopback and virtual ones (veth, bridges)
	{"net_tx", "bytes/s"},
	{"containers", ""}, // running
}

// ContainerFields are a container group's values, in order. The group's
// name is the container's ID (the master's replica ID, "app-xxxxxx").
var ContainerFields = []Field{
	{"cpu", "cores"},
	{"mem", "bytes"},
	{"mem_limit", "bytes"}, // 0: none
	{"oom_kills", ""},      // since the container was created
	{"pids", ""},
	{"restarts", ""},
	{"net_rx", "bytes/s"}, // in the container's own network namespace
	{"net_tx", "bytes/s"},
	{"health", ""}, // 1 healthy, 0 unhealthy, 0.5 starting; unknown without a check
}

// RouteFields are an edge route's values, in order. The group's name is
// the route's host (the app is found from the master's route table).
var RouteFields = []Field{
	{"requests", "1/s"},
	{"errors", "1/s"}, // answers 5xx, and requests no replica answered
	{"latency_avg", "s"},
	{"latency_max", "s"},
	// Seconds until the certificate the edge would serve the host now
	// expires (negative: it has); unknown without TLS or a certificate
	// yet (an ACME host before its first handshake or order).
	{"cert_expiry", "s"},
}

// Field is one value of a group: a name and its unit.
type Field struct {
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
}

// FieldsOf returns the fields of a group kind; nil for an unknown kind.
func FieldsOf(kind byte) []Field {
	switch kind {
	case GroupNode:
		return NodeFields
	case GroupContainer:
		return ContainerFields
	case GroupRoute:
		return RouteFields
	}
	return nil
}

// MetricsGroup is one group of a record: its values in FieldsOf(Kind)
// order (NaN: unknown).
type MetricsGroup struct {
	Kind   byte
	Name   string
	Values []float64
}

// MetricsRecord is one ring record: a sample time and groups.
type MetricsRecord struct {
	Time   time.Time
	Groups []MetricsGroup
}

// Encoding limits.
const (
	metricsVersion   = 1
	MaxGroupName     = 255
	MaxGroupValues   = 64
	MaxRecordGroups  = 4096
	recordHeaderSize = 1 + 8 + 2
)

var errMetricsRecord = errors.New("metrics record")

// EncodeMetrics encodes a sample as one or more records of at most max
// bytes each, every one carrying the time: groups are never split, and
// kept in order. A group that cannot fit in max bytes alone is an error.
func EncodeMetrics(t time.Time, groups []MetricsGroup, max int) ([][]byte, error) {
	var out [][]byte
	cur := metricsHeader(t)
	n := 0
	for _, g := range groups {
		if len(g.Name) > MaxGroupName || len(g.Values) > MaxGroupValues || FieldsOf(g.Kind) == nil {
			return nil, fmt.Errorf("%w: group %q (kind %d, %d values) cannot be encoded", errMetricsRecord, g.Name, g.Kind, len(g.Values))
		}
		size := 1 + 1 + len(g.Name) + 1 + 4*len(g.Values)
		if recordHeaderSize+size > max {
			return nil, fmt.Errorf("%w: group %q takes %d bytes, more than a record's %d", errMetricsRecord, g.Name, recordHeaderSize+size, max)
		}
		if len(cur)+size > max || n == MaxRecordGroups {
			out = append(out, finishRecord(cur, n))
			cur, n = metricsHeader(t), 0
		}
		cur = append(cur, g.Kind, byte(len(g.Name)))
		cur = append(cur, g.Name...)
		cur = append(cur, byte(len(g.Values)))
		for _, v := range g.Values {
			cur = binary.LittleEndian.AppendUint32(cur, math.Float32bits(float32(v)))
		}
		n++
	}
	if n > 0 || len(out) == 0 {
		out = append(out, finishRecord(cur, n))
	}
	return out, nil
}

func metricsHeader(t time.Time) []byte {
	b := make([]byte, recordHeaderSize, 512)
	b[0] = metricsVersion
	binary.LittleEndian.PutUint64(b[1:], uint64(t.UnixNano()))
	return b
}

func finishRecord(b []byte, groups int) []byte {
	binary.LittleEndian.PutUint16(b[9:], uint16(groups))
	return b
}

// DecodeMetrics decodes one record. Records come from a node, which the
// master does not trust: every length is checked, names must be printable
// ASCII, and an error says what is wrong at which byte.
func DecodeMetrics(b []byte) (MetricsRecord, error) {
	var r MetricsRecord
	if len(b) < recordHeaderSize {
		return r, fmt.Errorf("%w: %d bytes, shorter than its header", errMetricsRecord, len(b))
	}
	if b[0] != metricsVersion {
		return r, fmt.Errorf("%w: version %d, want %d", errMetricsRecord, b[0], metricsVersion)
	}
	ns := int64(binary.LittleEndian.Uint64(b[1:]))
	if ns <= 0 {
		return r, fmt.Errorf("%w: time %d not after 1970", errMetricsRecord, ns)
	}
	r.Time = time.Unix(0, ns).UTC()
	count := int(binary.LittleEndian.Uint16(b[9:]))
	p := recordHeaderSize
	for i := range count {
		if p+2 > len(b) {
			return MetricsRecord{}, fmt.Errorf("%w: group %d cut short at byte %d", errMetricsRecord, i, p)
		}
		kind, nameLen := b[p], int(b[p+1])
		p += 2
		if kind == 0 { // kinds this reader does not know are kept: fields are only ever added
			return MetricsRecord{}, fmt.Errorf("%w: group %d at byte %d: kind 0", errMetricsRecord, i, p-2)
		}
		if p+nameLen+1 > len(b) {
			return MetricsRecord{}, fmt.Errorf("%w: group %d's name cut short at byte %d", errMetricsRecord, i, p)
		}
		name := string(b[p : p+nameLen])
		if nameLen == 0 || !printable(name) {
			return MetricsRecord{}, fmt.Errorf("%w: group %d at byte %d: name %q empty or not printable ASCII", errMetricsRecord, i, p, name)
		}
		p += nameLen
		nv := int(b[p])
		p++
		if nv > MaxGroupValues || p+4*nv > len(b) {
			return MetricsRecord{}, fmt.Errorf("%w: group %q: %d values, cut short at byte %d", errMetricsRecord, name, nv, p)
		}
		vals := make([]float64, nv)
		for j := range vals {
			vals[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[p:])))
			p += 4
		}
		r.Groups = append(r.Groups, MetricsGroup{Kind: kind, Name: name, Values: vals})
	}
	if p != len(b) {
		return MetricsRecord{}, fmt.Errorf("%w: %d bytes after the last group", errMetricsRecord, len(b)-p)
	}
	return r, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Value returns the named field of a group, NaN when the group does not
// carry it.
func (g MetricsGroup) Value(field string) float64 {
	for i, f := range FieldsOf(g.Kind) {
		if f.Name == field {
			if i < len(g.Values) {
				return g.Values[i]
			}
			break
		}
	}
	return math.NaN()
}

// MaxMetricsPage bounds how many records one GET /v1/metrics returns, and
// MaxMetricsWait how long it waits for a first one.
const (
	MaxMetricsPage = 1024
	MaxMetricsWait = time.Minute
)

// MetricsPage is what GET /v1/metrics?after=SEQ&max=N&wait=D answers: the
// records after the cursor, oldest first. Gap: records after the cursor
// are no longer kept (the master was away longer than the ring holds, or
// the ring was made anew): those are lost, and the page resumes from the
// oldest kept.
type MetricsPage struct {
	Oldest   uint64      `json:"oldest"`
	Newest   uint64      `json:"newest"`
	Gap      bool        `json:"gap,omitempty"`
	Interval Duration    `json:"interval"` // the node's sampling interval
	Raw      []RawRecord `json:"records"`
}

// RawRecord is one ring record as the node stored it: the master decodes
// Data with DecodeMetrics.
type RawRecord struct {
	Seq  uint64 `json:"seq"`
	Data []byte `json:"data"`
}

// Metrics pulls the ring's records after a cursor, waiting up to wait for
// the first when there is none yet.
func (c *Client) Metrics(ctx context.Context, after uint64, max int, wait time.Duration) (MetricsPage, error) {
	var out MetricsPage
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "max": {strconv.Itoa(max)}, "wait": {wait.String()}}
	return out, c.Call(ctx, http.MethodGet, "/v1/metrics?"+q.Encode(), nil, &out)
}
