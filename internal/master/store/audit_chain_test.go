package store

import (
	"strings"
	"testing"
	"time"
)

// chain builds n well-linked entries.
func chain(n int) []AuditEntry {
	var out []AuditEntry
	prev := ""
	for i := 1; i <= n; i++ {
		e := AuditEntry{Seq: int64(i), Time: time.Date(2026, 12, 7, 10, 1, i, 0, time.UTC), User: "alice", Credential: "SHA256:k",
			Action: "deploy", Target: "web", Detail: "file web.yaml", Result: "started", Prev: prev}
		e.Hash = entryHash(e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// rehash recomputes the hashes from entry i on, as someone covering a
// change would.
func rehash(es []AuditEntry, from int) {
	for i := from; i < len(es); i++ {
		if i > 0 {
			es[i].Prev = es[i-1].Hash
		}
		es[i].Hash = entryHash(es[i])
	}
}

func head(e AuditEntry, name string) AuditAnchor {
	return AuditAnchor{AuditHead: AuditHead{Seq: e.Seq, Hash: e.Hash}, Name: name}
}

func TestChainCheck(t *testing.T) {
	tests := []struct {
		name    string
		edit    func([]AuditEntry) ([]AuditEntry, []AuditAnchor)
		at      int64
		problem string // "" for intact
	}{
		{"intact", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return es, []AuditAnchor{head(es[4], "the head record")}
		}, 0, ""},
		{"empty", func([]AuditEntry) ([]AuditEntry, []AuditAnchor) { return nil, nil }, 0, ""},
		{"detail changed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			es[2].Detail = "file other.yaml"
			return es, nil
		}, 3, "entry 3 (2026-12-07 10:01:03 alice deploy web) was changed"},
		{"result changed and rehashed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			es[1].Result = "refused"
			es[1].Hash = entryHash(es[1])
			return es, nil
		}, 2, "entry 2 (2026-12-07 10:01:02 alice deploy web) was changed"},
		{"time changed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			es[0].Time = es[0].Time.Add(time.Hour)
			return es, nil
		}, 1, "entry 1 (2026-12-07 11:01:01 alice deploy web) was changed"},
		{"middle removed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return append(es[:2:2], es[3:]...), nil
		}, 3, "entry 3 was removed: 4 follows 2"},
		{"several removed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return append(es[:1:1], es[4:]...), nil
		}, 2, "entries 2-4 were removed: 5 follows 1"},
		{"first removed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) { return es[1:], nil }, 1, "entry 1 was removed: the log begins at 2"},
		{"middle removed, the rest renumbered and rehashed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			anchor := head(es[4], "the head record")
			es = append(es[:2:2], es[3:]...)
			for i := range es {
				es[i].Seq = int64(i + 1)
			}
			rehash(es, 0)
			return es, []AuditAnchor{anchor}
		}, 5, "the newest entry was removed: the head record is 5, the log ends at 4"},
		{"newest removed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return es[:3], []AuditAnchor{head(es[4], "the head record")}
		}, 4, "the newest 2 entries were removed: the head record is 5, the log ends at 3"},
		{"all removed", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return nil, []AuditAnchor{head(es[4], "the head record")}
		}, 1, "the newest 5 entries were removed: the head record is 5, the log ends at 0"},
		{"rewritten consistently up to the head", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			anchor := head(es[4], "the recorded head")
			es[1].User = "bob"
			rehash(es, 1)
			return es, []AuditAnchor{anchor}
		}, 0, "entry 5 (2026-12-07 10:01:05 alice deploy web) is not the one the recorded head names"},
		{"head behind the log (a crash between commit and head write)", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return es, []AuditAnchor{head(es[3], "the head record")}
		}, 0, ""},
		{"duplicate seq", func(es []AuditEntry) ([]AuditEntry, []AuditAnchor) {
			return append(es[:3:3], es[2:]...), nil
		}, 3, "entry 3 appears twice or out of order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, anchors := tt.edit(chain(5))
			c := newChainCheck(anchors...)
			for _, e := range es {
				if !c.add(e) {
					break
				}
			}
			v := c.finish()
			if tt.problem == "" {
				if !v.OK() || v.Entries != int64(len(es)) {
					t.Fatalf("verdict %+v, want intact with %d entries", v, len(es))
				}
				return
			}
			if !strings.HasPrefix(v.Problem, tt.problem) || v.At != tt.at {
				t.Fatalf("problem %q at %d\nwant %q at %d", v.Problem, v.At, tt.problem, tt.at)
			}
		})
	}
}

// Fields cannot be shifted into one another: length prefixes keep
// "ab"+"c" and "a"+"bc" apart.
func TestEntryHashUnambiguous(t *testing.T) {
	a := AuditEntry{Seq: 1, User: "ab", Credential: "c"}
	b := AuditEntry{Seq: 1, User: "a", Credential: "bc"}
	if entryHash(a) == entryHash(b) {
		t.Fatal("shifted fields hash alike")
	}
	c := a
	c.Intent = 1
	if entryHash(a) == entryHash(c) {
		t.Fatal("intent is not hashed")
	}
}

func TestParseAuditHead(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"45 " + h, true}, {"45:" + h, true}, {"0 " + h, false}, {"-1 " + h, false}, {"45 " + h[:63], false},
		{"45 " + strings.ToUpper(h), false}, {"45", false}, {"", false}, {"x " + h, false}, {"45  " + h, false},
	} {
		got, err := parseAuditHead(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (got.Seq != 45 || got.Hash != h)) {
			t.Errorf("parseAuditHead(%q) = %+v, %v", tt.in, got, err)
		}
	}
}
