package masterapi

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestMetricsJSON: a history goes through JSON whole, unknown values as
// null, in the shape the tags say.
func TestMetricsJSON(t *testing.T) {
	nan := Value(math.NaN())
	m := Metrics{Kind: MetricsNode, Name: "n1", Step: 300, Times: []int64{1, 2}, Fields: nodeapi.NodeFields[:2],
		Avg: [][]Value{{1.5, nan}, {-2e-9, 1e300}}, Min: [][]Value{{1, nan}, nil}, Max: [][]Value{}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"node","name":"n1","step":300,"times":[1,2],"fields":[{"name":"cpu","unit":"cores"},{"name":"load1"}],"avg":[[1.5,null],[-2e-09,1e+300]],"min":[[1,null],null],"max":[]}`
	if string(b) != want {
		t.Errorf("encoded\n%s\nwant\n%s", b, want)
	}
	var got Metrics
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(got)
	if string(again) != want || !math.IsNaN(float64(got.Avg[0][1])) || got.Min[1] != nil {
		t.Errorf("decoded %+v", got)
	}
	for _, bad := range []string{`{"avg":[1]}`, `{"avg":[["1"]]}`, `{"avg":[[true]]}`, `{"avg":{}}`, `{"avg":[[1e999]]}`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s decoded: %+v", bad, got)
		}
	}
}

// FuzzMetricsRows: whatever the bytes, the row parser does not panic, and
// it reads every array of arrays of numbers and nulls as encoding/json
// does.
func FuzzMetricsRows(f *testing.F) {
	for _, s := range []string{`[[1,null],[2e3, -0.5 ]]`, `null`, `[]`, `[null,[]]`, `[[1,]]`, `[[--1]]`, `[[1e400]]`, ` [ [ 1 ] ] `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseRows([]byte(s))
		var want [][]*float64
		if json.Unmarshal([]byte(s), &want) != nil {
			return // not valid JSON: the decoder never hands it over
		}
		if err != nil {
			t.Fatalf("%q: encoding/json reads it, parseRows says %v", s, err)
		}
		if len(got) != len(want) || (got == nil) != (want == nil) {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
		for i := range want {
			if len(got[i]) != len(want[i]) || (got[i] == nil) != (want[i] == nil) {
				t.Fatalf("%q row %d: %v", s, i, got[i])
			}
			for j, w := range want[i] {
				g := float64(got[i][j])
				if w == nil && !math.IsNaN(g) || w != nil && !reflect.DeepEqual(*w, g) {
					t.Fatalf("%q [%d][%d]: %v, want %v", s, i, j, g, w)
				}
			}
		}
	})
}
