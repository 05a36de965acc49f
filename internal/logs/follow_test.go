package logs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// follower runs Read with Follow in the background and collects entries.
type follower struct {
	mu     sync.Mutex
	got    []Entry
	notify chan struct{} // signalled after each entry
	stop   chan struct{}
	cancel context.CancelFunc
	done   chan error
}

func startFollower(t *testing.T, dir string, opts ReadOptions) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{notify: make(chan struct{}, 1), stop: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	opts.Follow, opts.Stop = true, f.stop
	go func() {
		f.done <- Read(ctx, dir, opts, func(e Entry) error {
			f.mu.Lock()
			f.got = append(f.got, e)
			f.mu.Unlock()
			select {
			case f.notify <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// waitFor blocks until at least n entries have arrived.
func (f *follower) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for f.count() < n {
		select {
		case <-f.notify:
		case err := <-f.done:
			f.done <- err
			t.Fatalf("Read returned %v with %d of %d entries", err, f.count(), n)
		case <-deadline:
			t.Fatalf("only %d of %d entries within 10s", f.count(), n)
		}
	}
}

// wait returns Read's result, failing the test if it takes over 10s.
func (f *follower) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return within 10s")
		return nil
	}
}

func TestFollowAcrossRotations(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		maxSize  int64
		maxFiles int
		lag      int // how far the writer may get ahead of the follower
	}{
		// Nothing falls off, so the writer runs flat out and the follower
		// often finds several rotations done when it wakes.
		{name: "unpaced", n: 1000, maxSize: 1024, maxFiles: 60, lag: 1000},
		// Three records a file, three files: the writer stays a few
		// records ahead so rotations happen mid-read without data loss.
		{name: "three small files", n: 300, maxSize: 200, maxFiles: 3, lag: 4},
		{name: "one file", n: 100, maxSize: 200, maxFiles: 1, lag: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := startFollower(t, dir, ReadOptions{Tail: -1}) // before the first file exists
			w := newTestWriter(t, dir, tt.maxSize, tt.maxFiles)
			s := w.Stream("stdout")
			for i := range tt.n {
				if _, err := fmt.Fprintf(s, "line%05d\n", i); err != nil {
					t.Fatal(err)
				}
				f.waitFor(t, i+1-tt.lag)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			close(f.stop)
			if err := f.wait(t); err != nil {
				t.Fatalf("Read after Stop = %v, want nil", err)
			}
			if diff := cmp.Diff(numbered("line", 0, tt.n), lines(f.got)); diff != "" {
				t.Errorf("followed lines mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFollowTailThenNew(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	s := w.Stream("stderr")
	writeLines(t, s, "old", 10)
	f := startFollower(t, dir, ReadOptions{Tail: 3})
	f.waitFor(t, 3)
	writeLines(t, s, "new", 2)
	f.waitFor(t, 5)
	close(f.stop)
	if err := f.wait(t); err != nil {
		t.Fatalf("Read after Stop = %v, want nil", err)
	}
	want := append(numbered("old", 7, 10), numbered("new", 0, 2)...)
	if diff := cmp.Diff(want, lines(f.got)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestFollowStopDrains(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	f := startFollower(t, dir, ReadOptions{Tail: -1})
	// Stop may be seen before the follower ever wakes for these lines.
	writeLines(t, w.Stream("stdout"), "line", 20)
	close(f.stop)
	if err := f.wait(t); err != nil {
		t.Fatalf("Read after Stop = %v, want nil", err)
	}
	if diff := cmp.Diff(numbered("line", 0, 20), lines(f.got)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestFollowCancel(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	writeLines(t, w.Stream("stdout"), "line", 1)
	f := startFollower(t, dir, ReadOptions{Tail: -1})
	f.waitFor(t, 1)
	start := time.Now()
	f.cancel()
	if err := f.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Read took %v to return after cancel", d)
	}
}
