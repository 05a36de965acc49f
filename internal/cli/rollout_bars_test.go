package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moatcloud/moat/internal/masterapi"
)

// TestRolloutBars drives the terminal drawing of a rollout into a buffer:
// two deliveries, one finishing while listed and one by leaving the list,
// and done returns with mpb stopped and the final frame drawn.
func TestRolloutBars(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const mib = 1 << 20
	buf := &signalBuffer{wrote: make(chan struct{}, 1)}
	bars := newRolloutBars(buf)
	bars.update("hello revision 2: 0/3 ready (pushing image)", []masterapi.Transfer{
		{Node: "n1", From: "master", Done: 1 * mib, Total: 4 * mib},
	})
	deadline := time.After(10 * time.Second)
	for !strings.Contains(buf.String(), "1MiB / 4MiB  25 %") {
		select {
		case <-buf.wrote:
		case <-deadline:
			t.Fatalf("no frame with the delivery under way: %q", buf.String())
		}
	}
	bars.update("hello revision 2: 1/3 ready", []masterapi.Transfer{
		{Node: "n1", From: "master", Done: 4 * mib, Total: 4 * mib},
		{Node: "n2", From: "n1", Done: 3 * mib, Total: 6 * mib},
	})
	bars.update("hello revision 2: 3/3 ready", nil)

	done := make(chan struct{})
	go func() {
		bars.done()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("done did not return: mpb is still waiting for a bar")
	}

	// Without a terminal each frame is written whole; the last one is
	// what stays on the screen.
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("want at least a 2-line frame, got %q", buf.String())
	}
	// n2's delivery ended at 3 of 6 MiB: it is not shown as done.
	frame := lines[len(lines)-2:]
	if frame[0] != "hello revision 2: 3/3 ready" {
		t.Errorf("status line = %q", frame[0])
	}
	for i, want := range [][]string{
		{"n1 ← master", "4MiB / 4MiB", "100 %"},
	} {
		for _, w := range want {
			if !strings.Contains(frame[i+1], w) {
				t.Errorf("bar %d = %q, want it to show %q", i+1, frame[i+1], w)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", buf.String())
	}
}

// TestRolloutBarsEmpty: a watch that ends before any progress draws nothing
// and still stops mpb.
func TestRolloutBarsEmpty(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var buf bytes.Buffer
	newRolloutBars(&buf).done()
	if buf.Len() != 0 {
		t.Errorf("drew %q", buf.String())
	}
}

// signalBuffer is a bytes.Buffer that mpb may write while the test reads;
// wrote wakes a reader waiting for a frame.
type signalBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *signalBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *signalBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
