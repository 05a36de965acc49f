package logs

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLine(t *testing.T) {
	ts := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    Entry
		wantErr string // substring of the error; empty means success
	}{
		{name: "full", in: "2025-03-01T12:00:00.123456789Z stdout F hello world",
			want: Entry{Time: ts, Stream: "stdout", Line: "hello world"}},
		{name: "partial stderr", in: "2025-03-01T12:00:00.123456789Z stderr P abc",
			want: Entry{Time: ts, Stream: "stderr", Partial: true, Line: "abc"}},
		{name: "empty content", in: "2025-03-01T12:00:00.123456789Z stdout F ",
			want: Entry{Time: ts, Stream: "stdout", Line: ""}},
		{name: "content keeps spaces and CR", in: "2025-03-01T12:00:00.123456789Z stdout F  a  b\r",
			want: Entry{Time: ts, Stream: "stdout", Line: " a  b\r"}},
		{name: "short fraction", in: "2025-03-01T12:00:00Z stdout F x",
			want: Entry{Time: ts.Truncate(time.Second), Stream: "stdout", Line: "x"}},
		{name: "offset becomes UTC", in: "2025-03-01T14:00:00.123456789+02:00 stdout F x",
			want: Entry{Time: ts, Stream: "stdout", Line: "x"}},
		{name: "empty", in: "", wantErr: "no space after the time"},
		{name: "time only", in: "2025-03-01T12:00:00Z", wantErr: "no space after the time"},
		{name: "bad time", in: "yesterday stdout F x", wantErr: `time "yesterday"`},
		{name: "before year 0 in UTC", in: "0000-01-01T00:00:00+01:00 stdout F x", wantErr: "outside years"},
		{name: "after year 9999 in UTC", in: "9999-12-31T23:59:59-01:00 stdout F x", wantErr: "outside years"},
		{name: "no tag", in: "2025-03-01T12:00:00Z stdout", wantErr: "no space after the stream"},
		{name: "bad stream", in: "2025-03-01T12:00:00Z stdin F x", wantErr: `stream "stdin"`},
		{name: "no space after tag", in: "2025-03-01T12:00:00Z stdout F", wantErr: "no space after the tag"},
		{name: "bad tag", in: "2025-03-01T12:00:00Z stdout X x", wantErr: `tag "X"`},
		{name: "long tag", in: "2025-03-01T12:00:00Z stdout FP x", wantErr: `tag "FP"`},
		{name: "double space", in: "2025-03-01T12:00:00Z  stdout F x", wantErr: `stream ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseLine(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseLine(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	e := Entry{Time: t0.Add(42 * time.Nanosecond), Stream: "stderr", Partial: true, Line: "a b\r"}
	rec := appendRecord(nil, e.Time, e.Stream, e.Partial, []byte(e.Line))
	if !strings.HasSuffix(string(rec), "\n") {
		t.Fatalf("record %q lacks its newline", rec)
	}
	got, err := ParseLine(rec[:len(rec)-1])
	if err != nil {
		t.Fatalf("ParseLine(%q): %v", rec, err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

// FuzzParseLine checks that ParseLine never panics and that whatever it
// accepts survives being written as a record and parsed again.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"2025-03-01T12:00:00.123456789Z stdout F hello",
		"2025-03-01T12:00:00Z stderr P ",
		"2025-03-01T14:00:00+02:00 stdout F a\rb",
		"2025-03-01T12:00:00Z stdout F",
		"0000-01-01T00:00:00+01:00 stdout F x",
		"garbage",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseLine(b)
		if err != nil {
			return
		}
		if !validStream(e.Stream) {
			t.Fatalf("ParseLine(%q) accepted stream %q", b, e.Stream)
		}
		rec := appendRecord(nil, e.Time, e.Stream, e.Partial, []byte(e.Line))
		again, err := ParseLine(rec[:len(rec)-1])
		if err != nil {
			t.Fatalf("reparse %q of %q: %v", rec, b, err)
		}
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("reparse of %q mismatch (-first +second):\n%s", b, diff)
		}
	})
}
