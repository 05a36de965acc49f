package nodeapi

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMetricsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 0, 0, 123, time.UTC)
	groups := []MetricsGroup{{Kind: GroupNode, Name: "n1", Values: []float64{1.5, 0.25, 1 << 30, 2 << 30, 5e9, 2e10, 100, 200, 3000, 4000, 3}}}
	for i := range 100 {
		groups = append(groups, MetricsGroup{Kind: GroupContainer, Name: "web-abcdef" + strings.Repeat("x", i%7), Values: []float64{0.5, 1e8, 0, 0, 12, 1, 10, 20, math.NaN()}})
	}
	recs, err := EncodeMetrics(at, groups, 4072)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("100 containers in %d record(s), want them split", len(recs))
	}
	var got []MetricsGroup
	for i, b := range recs {
		if len(b) > 4072 {
			t.Errorf("record %d: %d bytes, more than 4072", i, len(b))
		}
		r, err := DecodeMetrics(b)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !r.Time.Equal(at) {
			t.Errorf("record %d: time %v, want %v", i, r.Time, at)
		}
		got = append(got, r.Groups...)
	}
	if len(got) != len(groups) {
		t.Fatalf("%d groups back, want %d", len(got), len(groups))
	}
	for i := range groups {
		if got[i].Name != groups[i].Name || got[i].Kind != groups[i].Kind || len(got[i].Values) != len(groups[i].Values) {
			t.Fatalf("group %d = %+v, want %+v", i, got[i], groups[i])
		}
	}
	if v := got[0].Value("mem_total"); v != 2<<30 {
		t.Errorf("node mem_total = %v", v)
	}
	if v := got[1].Value("health"); !math.IsNaN(v) {
		t.Errorf("unknown health = %v, want NaN", v)
	}
	if v := got[1].Value("nonesuch"); !math.IsNaN(v) {
		t.Errorf("unknown field = %v, want NaN", v)
	}
}

func TestMetricsEncodeRefuses(t *testing.T) {
	at := time.Unix(1, 0)
	for _, g := range []MetricsGroup{
		{Kind: GroupNode, Name: strings.Repeat("n", 256)},
		{Kind: 9, Name: "x"},
		{Kind: GroupContainer, Name: "x", Values: make([]float64, 65)},
	} {
		if _, err := EncodeMetrics(at, []MetricsGroup{g}, 4072); err == nil {
			t.Errorf("group %q kind %d with %d values encoded", g.Name[:1], g.Kind, len(g.Values))
		}
	}
	if _, err := EncodeMetrics(at, []MetricsGroup{{Kind: GroupContainer, Name: "x", Values: make([]float64, 9)}}, 20); err == nil {
		t.Error("a group larger than a record encoded")
	}
}

func TestMetricsDecodeRefuses(t *testing.T) {
	good, _ := EncodeMetrics(time.Unix(5, 0), []MetricsGroup{{Kind: GroupContainer, Name: "a-b", Values: []float64{1, 2}}}, 4072)
	b := good[0]
	cases := map[string][]byte{
		"short":      b[:5],
		"version":    append([]byte{9}, b[1:]...),
		"cut":        b[:len(b)-1],
		"trailing":   append(append([]byte{}, b...), 0),
		"zero time":  append(append([]byte{b[0]}, make([]byte, 8)...), b[9:]...),
		"bad name":   replaceAt(b, recordHeaderSize+2, ' '),
		"kind zero":  replaceAt(b, recordHeaderSize, 0),
		"too many v": replaceAt(b, recordHeaderSize+2+3, 200),
	}
	for name, in := range cases {
		if _, err := DecodeMetrics(in); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func replaceAt(b []byte, i int, v byte) []byte {
	c := append([]byte{}, b...)
	c[i] = v
	return c
}

func FuzzDecodeMetrics(f *testing.F) {
	good, _ := EncodeMetrics(time.Unix(5, 0), []MetricsGroup{{Kind: GroupNode, Name: "n1", Values: []float64{1, 2}}, {Kind: GroupRoute, Name: "web.test", Values: []float64{3}}}, 4072)
	f.Add(good[0])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeMetrics(b)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		again, err := EncodeMetrics(r.Time, r.Groups, 1<<20)
		if err != nil {
			if strings.Contains(err.Error(), "cannot be encoded") {
				return // a kind this reader does not know
			}
			t.Fatalf("decoded record does not encode: %v", err)
		}
		back, err := DecodeMetrics(again[0])
		if err != nil || !back.Time.Equal(r.Time) || len(back.Groups) != len(r.Groups) {
			t.Fatalf("round trip: %v, %+v, want %+v", err, back, r)
		}
		for i, g := range back.Groups {
			for j, v := range g.Values {
				if w := r.Groups[i].Values[j]; v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
					t.Fatalf("group %d value %d: %v, want %v", i, j, v, w)
				}
			}
		}
	})
}
