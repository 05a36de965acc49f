package masterapi

import (
	"encoding/json"
	"math"
	"testing"
)

// TestValueJSON: a metric value is a number or null (NaN) both ways, and
// anything else is refused.
func TestValueJSON(t *testing.T) {
	var vs []Value
	if err := json.Unmarshal([]byte(`[1.5, null, -2e-3, 0, 12345678901234567890]`), &vs); err != nil {
		t.Fatal(err)
	}
	if vs[0] != 1.5 || !math.IsNaN(float64(vs[1])) || vs[2] != -2e-3 || vs[3] != 0 || vs[4] != 12345678901234567890 {
		t.Errorf("decoded %v", vs)
	}
	for _, bad := range []string{`["1"]`, `[true]`, `[1e999]`, `[{}]`} {
		if err := json.Unmarshal([]byte(bad), &vs); err == nil {
			t.Errorf("%s decoded as %v", bad, vs)
		}
	}
	b, err := json.Marshal([]Value{Value(math.NaN()), Value(math.Inf(1)), 2.5})
	if err != nil || string(b) != `[null,null,2.5]` {
		t.Errorf("encoded %s %v", b, err)
	}
}
