package logs

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock returns t0+step, t0+2*step, ... so every record has its own time.
type testClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// newTestWriter opens a Writer on dir whose clock ticks a second per record
// and closes it at the end of the test.
func newTestWriter(t *testing.T, dir string, maxSize int64, maxFiles int) *Writer {
	t.Helper()
	w, err := NewWriter(dir, maxSize, maxFiles)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	clk := &testClock{t: t0, step: time.Second}
	w.Now = clk.now
	t.Cleanup(func() { w.Close() })
	return w
}

// writeLines writes "<prefix><i>\n" for i in [0, n) to s.
func writeLines(t *testing.T, s io.Writer, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, err := fmt.Fprintf(s, "%s%05d\n", prefix, i); err != nil {
			t.Fatalf("write line %d: %v", i, err)
		}
	}
}

// readAll reads dir without following.
func readAll(t *testing.T, dir string, opts ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := Read(context.Background(), dir, opts, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

// lines returns the Line of each entry.
func lines(es []Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Line)
	}
	return out
}

// numbered returns "<prefix><i>" for i in [from, to).
func numbered(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%05d", prefix, i))
	}
	return out
}
