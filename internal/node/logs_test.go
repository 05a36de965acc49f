package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestLogs(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "spammer", Cmd: []string{"spam", "100"}})
	// stdout and stderr are read apart: stderr's last line can be logged
	// before stdout's are, so wait for the count, not for that line.
	var all []nodeapi.LogEntry
	waitFor(t, "101 lines logged", 20*time.Second, func() bool {
		all = logLines(t, n, c.ID, nodeapi.LogOptions{})
		return len(all) >= 101
	})
	if len(all) != 101 {
		t.Fatalf("%d lines, want 101", len(all))
	}
	// stdout and stderr are two pipes: order holds within each stream.
	var stdout []string
	for _, e := range all {
		if e.Stream == "stdout" {
			stdout = append(stdout, e.Line)
		} else if e.Line != "done on stderr" {
			t.Errorf("stderr line %q", e.Line)
		}
	}
	for i, line := range stdout {
		if want := fmt.Sprintf("line %d", i); line != want {
			t.Fatalf("stdout line %d = %q, want %q", i, line, want)
		}
	}
	tail := logLines(t, n, c.ID, nodeapi.LogOptions{Tail: 3})
	if len(tail) != 3 || !slices.Equal(lineTexts(tail), lineTexts(all[98:])) {
		t.Errorf("tail 3 = %v, want the last 3 of %d", lineTexts(tail), len(all))
	}
	since := all[50].Time.Format(time.RFC3339Nano)
	if got := logLines(t, n, c.ID, nodeapi.LogOptions{Since: since}); len(got) < 51 {
		t.Errorf("since line 50: %d lines, want at least 51", len(got))
	}
}

func lineTexts(es []nodeapi.LogEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Line)
	}
	return out
}

func TestLogsFollow(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "ticker", Cmd: []string{"tick", "20ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- n.Client.Logs(ctx, c.ID, nodeapi.LogOptions{Follow: true, Tail: 0}, func(e nodeapi.LogEntry) error {
			got <- e.Line
			return nil
		})
	}()
	// New lines arrive while following...
	first := <-got
	for i := 0; i < 5; i++ {
		if line := <-got; !strings.HasPrefix(line, "tick ") {
			t.Fatalf("followed line %q", line)
		}
	}
	// ...and the stream ends when the container stops for good.
	if _, err := n.Client.StopContainer(context.Background(), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatalf("follow did not end after the container stopped (first line %q)", first)
	}
}

func TestLogRotation(t *testing.T) {
	n := newNode(t, "--log-max-size", "4Ki", "--log-max-files", "2")
	c := run(t, n, nodeapi.ContainerSpec{Name: "chatty", Cmd: []string{"spam", "2000"}})
	waitLog(t, n, c.ID, "line 1999")
	lines := logLines(t, n, c.ID, nodeapi.LogOptions{})
	// Two files of 4 KiB keep roughly the last 120 lines, never all 2000.
	if len(lines) >= 2000 || len(lines) < 20 {
		t.Fatalf("%d lines kept, want the newest few dozen", len(lines))
	}
	var newest string
	for _, e := range lines {
		if e.Stream == "stdout" {
			newest = e.Line
		}
	}
	if newest != "line 1999" {
		t.Errorf("newest stdout line %q, want the last one written (line 1999)", newest)
	}
}
