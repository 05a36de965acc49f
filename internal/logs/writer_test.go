package logs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		maxSize  int64
		maxFiles int
		prefix   string
		n        int
	}{
		{name: "defaults, no rotation", n: 100, prefix: "line"},
		{name: "three files", maxSize: 200, maxFiles: 3, n: 50, prefix: "line"},
		{name: "one file", maxSize: 200, maxFiles: 1, n: 50, prefix: "line"},
		{name: "record bigger than the cap", maxSize: 10, maxFiles: 4, n: 20, prefix: "line"},
		{name: "ten files", maxSize: 1000, maxFiles: 10, n: 1000, prefix: "line"},
		{name: "MaxLine records", maxSize: 40000, maxFiles: 2, n: 7, prefix: strings.Repeat("y", MaxLine-5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newTestWriter(t, dir, tt.maxSize, tt.maxFiles)
			writeLines(t, w.Stream("stdout"), tt.prefix, tt.n)

			maxSize, maxFiles := tt.maxSize, tt.maxFiles
			if maxSize == 0 {
				maxSize, maxFiles = DefaultMaxSize, DefaultMaxFiles
			}
			recSize := int64(len(appendRecord(nil, t0, "stdout", false, []byte(tt.prefix+"00000"))))
			perFile := max(1, int(maxSize/recSize))
			last := tt.n % perFile
			if last == 0 {
				last = perFile
			}
			kept := min(tt.n, last+(maxFiles-1)*perFile)

			checkFiles(t, dir, maxFiles, maxSize)
			got := lines(readAll(t, dir, ReadOptions{Tail: -1}))
			if diff := cmp.Diff(numbered(tt.prefix, tt.n-kept, tt.n), got); diff != "" {
				t.Errorf("lines read back mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// checkFiles asserts that dir holds container.log, .1, .2, ... and nothing
// else, no more than maxFiles of them, each within maxSize unless it holds a
// single record.
func checkFiles(t *testing.T, dir string, maxFiles int, maxSize int64) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) > maxFiles {
		t.Errorf("%d files, want at most %d", len(des), maxFiles)
	}
	for i := range des {
		b, err := os.ReadFile(logPath(dir, i))
		if err != nil {
			t.Fatalf("files are not container.log, .1, .2, ...: %v", err)
		}
		if int64(len(b)) > maxSize && bytes.Count(b, []byte{'\n'}) > 1 {
			t.Errorf("%s: %d bytes in %d records, cap %d", filepath.Base(logPath(dir, i)), len(b), bytes.Count(b, []byte{'\n'}), maxSize)
		}
	}
}

func TestNewWriterAppends(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, 0, 0)
	writeLines(t, w.Stream("stdout"), "first", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = newTestWriter(t, dir, 0, 0)
	writeLines(t, w.Stream("stdout"), "second", 2)

	want := append(numbered("first", 0, 3), numbered("second", 0, 2)...)
	if diff := cmp.Diff(want, lines(readAll(t, dir, ReadOptions{Tail: -1}))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestNewWriterPrunesExtraFiles(t *testing.T) {
	dir := t.TempDir()
	for i, s := range []string{"cur", "one", "two", "three", "four"} {
		rec := appendRecord(nil, t0.Add(time.Duration(-i)*time.Second), "stdout", false, []byte(s))
		if err := os.WriteFile(logPath(dir, i), rec, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	newTestWriter(t, dir, 0, 3)
	checkFiles(t, dir, 3, DefaultMaxSize)
	if diff := cmp.Diff([]string{"two", "one", "cur"}, lines(readAll(t, dir, ReadOptions{Tail: -1}))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestNewWriterTerminatesTornRecord(t *testing.T) {
	dir := t.TempDir()
	torn := string(appendRecord(nil, t0, "stdout", false, []byte("kept"))) + "2025-03-01T12:00:0"
	if err := os.WriteFile(logPath(dir, 0), []byte(torn), 0o640); err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, dir, 0, 0)
	writeLines(t, w.Stream("stdout"), "after", 1)

	want := []string{"kept", "after00000"}
	if diff := cmp.Diff(want, lines(readAll(t, dir, ReadOptions{Tail: -1}))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestConcurrentStreams(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	w := newTestWriter(t, dir, 4096, 100) // rotates often, keeps everything
	var wg sync.WaitGroup
	for _, name := range []string{"stdout", "stderr"} {
		wg.Go(func() {
			s := w.Stream(name)
			for i := 0; i < n; i++ {
				// Uneven writes: some hold several lines, some half of one.
				msg := fmt.Sprintf("%s%05d\n", name, i)
				if i%3 == 0 && i+1 < n {
					msg += fmt.Sprintf("%s%05d\n", name, i+1)
					i++
				}
				if _, err := s.Write([]byte(msg[:4])); err != nil {
					t.Errorf("%s write: %v", name, err)
					return
				}
				if _, err := s.Write([]byte(msg[4:])); err != nil {
					t.Errorf("%s write: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()

	got := map[string][]string{}
	for i := 99; i >= 0; i-- {
		f, err := os.Open(logPath(dir, i))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			e, err := ParseLine(sc.Bytes())
			if err != nil {
				t.Fatalf("record %q does not parse: %v", sc.Text(), err)
			}
			got[e.Stream] = append(got[e.Stream], e.Line)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"stdout", "stderr"} {
		if diff := cmp.Diff(numbered(name, 0, n), got[name]); diff != "" {
			t.Errorf("%s lines mismatch (-want +got):\n%s", name, diff)
		}
	}
}
