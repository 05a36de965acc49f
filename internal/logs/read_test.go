package logs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadTailSince(t *testing.T) {
	const n = 50
	dir := t.TempDir()
	w := newTestWriter(t, dir, 300, 20) // about ten files, none dropped
	writeLines(t, w.Stream("stdout"), "line", n)
	if idx, err := rotatedIndexes(dir); err != nil || len(idx) < 5 {
		t.Fatalf("rotated files %v, %v: want several", idx, err)
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i+1) * time.Second) } // time of line i

	tests := []struct {
		name string
		opts ReadOptions
		want []string
	}{
		{name: "all", opts: ReadOptions{Tail: -1}, want: numbered("line", 0, n)},
		{name: "tail 5", opts: ReadOptions{Tail: 5}, want: numbered("line", n-5, n)},
		{name: "tail 0", opts: ReadOptions{Tail: 0}, want: []string{}},
		{name: "tail more than there is", opts: ReadOptions{Tail: 1000}, want: numbered("line", 0, n)},
		{name: "since is inclusive", opts: ReadOptions{Tail: -1, Since: at(45)}, want: numbered("line", 45, n)},
		{name: "since between records", opts: ReadOptions{Tail: -1, Since: at(7).Add(-time.Millisecond)}, want: numbered("line", 7, n)},
		{name: "since and tail", opts: ReadOptions{Tail: 3, Since: at(10)}, want: numbered("line", n-3, n)},
		{name: "tail larger than since leaves", opts: ReadOptions{Tail: 10, Since: at(45)}, want: numbered("line", 45, n)},
		{name: "since after everything", opts: ReadOptions{Tail: -1, Since: at(n)}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lines(readAll(t, dir, tt.opts))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadEntries(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	if _, err := w.Stream("stdout").Write([]byte("out\n")); err != nil {
		t.Fatal(err)
	}
	stderr := w.Stream("stderr")
	if _, err := stderr.Write([]byte("err")); err != nil {
		t.Fatal(err)
	}
	if err := stderr.Close(); err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Time: t0.Add(time.Second), Stream: "stdout", Line: "out"},
		{Time: t0.Add(2 * time.Second), Stream: "stderr", Partial: true, Line: "err"},
	}
	if diff := cmp.Diff(want, readAll(t, dir, ReadOptions{Tail: -1})); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestReadSkipsMalformed(t *testing.T) {
	dir := t.TempDir()
	good := func(s string) string { return string(appendRecord(nil, t0, "stdout", false, []byte(s))) }
	content := good("a") +
		"not a record\n" +
		"\n" +
		strings.Repeat("z", 3*maxRecord) + "\n" + // too long to be a record
		good("b") +
		"2025-03-01T12:00:00Z stdin F c\n" +
		good("d") +
		"2025-03-01T12:00:00Z stdout F unterminated" // still being written
	if err := os.WriteFile(logPath(dir, 0), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "d"}, lines(readAll(t, dir, ReadOptions{Tail: -1}))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestReadEmptyAndMissingDir(t *testing.T) {
	dir := t.TempDir()
	if got := readAll(t, dir, ReadOptions{Tail: -1}); len(got) != 0 {
		t.Errorf("empty dir: got %v", got)
	}
	err := Read(context.Background(), filepath.Join(dir, "nope"), ReadOptions{Tail: -1}, func(Entry) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: error = %v, want os.ErrNotExist", err)
	}
}

func TestReadEmitError(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	writeLines(t, w.Stream("stdout"), "line", 5)
	stop := errors.New("enough")
	for _, opts := range []ReadOptions{{Tail: -1}, {Tail: 2}, {Tail: -1, Follow: true}} {
		calls := 0
		err := Read(context.Background(), dir, opts, func(Entry) error {
			calls++
			return stop
		})
		if err != stop || calls != 1 {
			t.Errorf("Read(%+v) = %v after %d calls, want %v after 1", opts, err, calls, stop)
		}
	}
}

func TestWatcherWakes(t *testing.T) {
	dir := t.TempDir()
	w, err := watchDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := os.WriteFile(filepath.Join(dir, currentName), []byte("x\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up within 5s of a write")
	}
}
