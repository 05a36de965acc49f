package master

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestDialOrder(t *testing.T) {
	reps := []masterapi.Replica{
		{ID: "a", Node: "n1", Desired: "run", State: "ready"},
		{ID: "b", Node: "n2", Desired: "run", State: "ready"},
		{ID: "c", Node: "n1", Desired: "run", State: "starting"},
		{ID: "d", Node: "n1", Desired: "run", State: "failed"},
		{ID: "e", Node: "n1", Desired: "stop", State: "ready"},
		{ID: "f", Node: "n3", Desired: "run", State: "ready"}, // n3 is down
		{ID: "g", Node: "n2", Desired: "run", State: "unknown"},
		{ID: "h", Node: "n2", Desired: "run", State: "ready"},
	}
	up := func(node string) bool { return node != "n3" }
	want := []string{"a", "b", "h"}
	seen := map[string]bool{}
	for range 50 {
		var got []string
		for _, r := range dialOrder(reps, up) {
			got = append(got, r.ID)
		}
		seen[got[0]] = true
		if d := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
			t.Fatalf("dialOrder: the ready replicas on nodes that are up (-want +got):\n%s", d)
		}
	}
	if len(seen) < 2 {
		t.Errorf("dialOrder always tries %v first in 50 calls: not shuffled", seen)
	}
	if got := dialOrder(nil, up); len(got) != 0 {
		t.Errorf("dialOrder(none) = %v", got)
	}
}
