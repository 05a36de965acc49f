package logs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

// rec is what a stream test expects of one record.
type rec struct {
	Partial bool
	Line    string
}

func TestStreamSplitsLines(t *testing.T) {
	long := strings.Repeat("x", 2*MaxLine+5)
	tests := []struct {
		name   string
		writes []string
		close  bool
		want   []rec
	}{
		{name: "one line", writes: []string{"hello\n"}, want: []rec{{Line: "hello"}}},
		{name: "two lines in one write", writes: []string{"a\nb\n"}, want: []rec{{Line: "a"}, {Line: "b"}}},
		{name: "line across writes", writes: []string{"hel", "lo", "\nwor", "ld\n"},
			want: []rec{{Line: "hello"}, {Line: "world"}}},
		{name: "empty lines", writes: []string{"\n\n", "\n"}, want: []rec{{}, {}, {}}},
		{name: "CRLF keeps the CR", writes: []string{"a\r\nb\r\n"}, want: []rec{{Line: "a\r"}, {Line: "b\r"}}},
		{name: "partial at close", writes: []string{"done\nabc"}, close: true,
			want: []rec{{Line: "done"}, {Partial: true, Line: "abc"}}},
		{name: "unterminated without close stays buffered", writes: []string{"abc"}},
		{name: "newline last then close", writes: []string{"abc\n"}, close: true, want: []rec{{Line: "abc"}}},
		{name: "exactly MaxLine is full", writes: []string{long[:MaxLine] + "\n"}, want: []rec{{Line: long[:MaxLine]}}},
		{name: "MaxLine+1 splits", writes: []string{long[:MaxLine+1] + "\n"},
			want: []rec{{Partial: true, Line: long[:MaxLine]}, {Line: "x"}}},
		{name: "long line in one write", writes: []string{long + "\nnext\n"},
			want: []rec{{Partial: true, Line: long[:MaxLine]}, {Partial: true, Line: long[:MaxLine]}, {Line: "xxxxx"}, {Line: "next"}}},
		{name: "long line in small writes", writes: chunks(long+"\n", 1000),
			want: []rec{{Partial: true, Line: long[:MaxLine]}, {Partial: true, Line: long[:MaxLine]}, {Line: "xxxxx"}}},
		{name: "long line without newline then close", writes: []string{long[:MaxLine+7]}, close: true,
			want: []rec{{Partial: true, Line: long[:MaxLine]}, {Partial: true, Line: "xxxxxxx"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newTestWriter(t, dir, 0, 0)
			s := w.Stream("stderr")
			for _, p := range tt.writes {
				if n, err := s.Write([]byte(p)); err != nil || n != len(p) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
				}
			}
			if tt.close {
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			var got []rec
			for _, e := range readAll(t, dir, ReadOptions{Tail: -1}) {
				if e.Stream != "stderr" {
					t.Errorf("entry %q on stream %q, want stderr", e.Line, e.Stream)
				}
				got = append(got, rec{Partial: e.Partial, Line: e.Line})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// chunks splits s into pieces of n bytes.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestStreamErrors(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), 0, 0)
	if _, err := w.Stream("stdin").Write([]byte("x\n")); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("write to stream stdin: error = %v, want ErrInvalid", err)
	}
	s := w.Stream("stdout")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after stream Close: error = %v, want os.ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Writer.Close: %v", err)
	}
	if _, err := w.Stream("stdout").Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Writer.Close: error = %v, want os.ErrClosed", err)
	}
}
