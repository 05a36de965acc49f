package delivery

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChooseDelivery(t *testing.T) {
	type set = map[string]bool
	tests := []struct {
		name      string
		sources   map[string]int // fetches each serves now
		receiving set            // sources still receiving the image
		upstream  map[string]string
		seeding   bool
		canFetch  bool
		failed    set
		notReady  []string // sources down, or without the peer key
		want      delivery
	}{
		{"a whole source with room", map[string]int{"n1": 0}, nil, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n1"}},
		{"a whole source serving one of its two", map[string]int{"n1": 1}, nil, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n1"}},
		{"a whole source serving its two: wait", map[string]int{"n1": perSource}, nil, nil, false, true, nil, nil, delivery{Way: deliverWait}},
		{"a source still receiving serves one", map[string]int{"n1": 0}, set{"n1": true}, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n1"}},
		{"a source still receiving serving its one: wait", map[string]int{"n1": perStreaming}, set{"n1": true}, nil, false, true, nil, nil, delivery{Way: deliverWait}},
		{"whole sources first, even busier", map[string]int{"n1": 1, "n2": 0}, set{"n2": true}, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n1"}},
		{"then the least busy", map[string]int{"n1": 1, "n2": 0, "n3": 1}, nil, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n2"}},
		{"a receiving one when the whole ones are full", map[string]int{"n1": 2, "n2": 0}, set{"n2": true}, nil, false, true, nil, nil, delivery{Way: deliverFetch, From: "n2"}},
		{"never itself: the first to ask seeds", map[string]int{"me": 0}, set{"me": true}, nil, false, true, nil, nil, delivery{Way: deliverSeed}},
		{"not from its own downstream (they would wait on each other)", map[string]int{"n1": 0}, set{"n1": true}, map[string]string{"n1": "me"}, false, true, nil, nil, delivery{Way: deliverWait}},
		{"not from its downstream two hops away", map[string]int{"n1": 0, "n2": 1}, set{"n1": true, "n2": true},
			map[string]string{"n1": "n2", "n2": "me"}, false, true, nil, nil, delivery{Way: deliverWait}},
		{"from a node downstream of another", map[string]int{"n1": 0}, set{"n1": true}, map[string]string{"n1": "n2"}, false, true, nil, nil, delivery{Way: deliverFetch, From: "n1"}},
		{"not from a source that is not ready: with none other, seed", map[string]int{"n1": 0}, nil, nil, false, true, nil, []string{"n1"}, delivery{Way: deliverSeed}},
		{"not from a source that is not ready: seed under way, wait", map[string]int{"n1": 0}, nil, nil, true, true, nil, []string{"n1"}, delivery{Way: deliverWait}},
		{"no source: the first seeds", nil, nil, nil, false, true, nil, nil, delivery{Way: deliverSeed}},
		{"no source, seed under way: wait", nil, nil, nil, true, true, nil, nil, delivery{Way: deliverWait}},
		{"a busy source and no seeding: wait for it, not a second upload", map[string]int{"n1": 2}, nil, nil, false, true, nil, nil, delivery{Way: deliverWait}},
		{"cannot fetch (no peer key): upload at once", map[string]int{"n1": 0}, nil, nil, false, false, nil, nil, delivery{Way: deliverUpload}},
		{"cannot fetch, nothing anywhere: upload, not as the seed", nil, nil, nil, false, false, nil, nil, delivery{Way: deliverUpload}},
		{"not from one that failed it: upload at once", map[string]int{"n1": 0}, nil, nil, false, true, set{"n1": true}, nil, delivery{Way: deliverUpload}},
		{"another source after one failed", map[string]int{"n1": 0, "n2": 1}, nil, nil, false, true, set{"n1": true}, nil, delivery{Way: deliverFetch, From: "n2"}},
		{"after a failure, full sources: upload rather than wait", map[string]int{"n1": 0, "n2": 2}, nil, nil, false, true, set{"n1": true}, nil, delivery{Way: deliverUpload}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := distState{sources: tt.sources, receiving: tt.receiving, upstream: tt.upstream, seeding: tt.seeding}
			ready := func(node string) bool { return !slices.Contains(tt.notReady, node) }
			got := s.choose("me", tt.canFetch, tt.failed, ready)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("choose (-want +got):\n%s", d)
			}
		})
	}
}

// TestChooseAsksReadyLast: whether a node is ready costs a look at its
// connection and the database: only sources that qualify otherwise are
// asked about while choosing.
func TestChooseAsksReadyLast(t *testing.T) {
	s := distState{
		sources:   map[string]int{"me": 0, "full": perSource, "failed": 0, "down": 0, "ok": 0},
		receiving: map[string]bool{},
		upstream:  map[string]string{"down": "me"},
	}
	var asked []string
	got := s.choose("me", true, map[string]bool{"failed": true}, func(node string) bool {
		asked = append(asked, node)
		return true
	})
	if want := (delivery{Way: deliverFetch, From: "ok"}); got != want {
		t.Errorf("choose = %+v, want %+v", got, want)
	}
	if d := cmp.Diff([]string{"ok"}, asked); d != "" {
		t.Errorf("asked whether ready (-want +got):\n%s", d)
	}
}

func TestDownstream(t *testing.T) {
	// me ← a ← b ← c, and a cycle x ↔ y that must not loop.
	s := distState{upstream: map[string]string{"a": "me", "b": "a", "c": "b", "x": "y", "y": "x"}}
	tests := []struct {
		node, of string
		want     bool
	}{
		{"a", "me", true},
		{"c", "me", true},
		{"me", "me", true},
		{"me", "a", false},
		{"b", "c", false},
		{"x", "me", false},
		{"", "me", false},
	}
	for _, tt := range tests {
		if got := s.downstream(tt.node, tt.of); got != tt.want {
			t.Errorf("downstream(%q, %q) = %v, want %v", tt.node, tt.of, got, tt.want)
		}
	}
}
