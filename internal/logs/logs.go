// Package logs captures container output into size-capped rotating files in
// the CRI log format and reads it back with tail, since and follow.
//
// A record is one line: "<time> <stream> <tag> <content>\n", where time is
// RFC 3339 with nanoseconds in UTC, stream is stdout or stderr, and tag is F
// for a full line or P for a partial one (a line longer than MaxLine split
// into chunks, or output that ended without a newline).
package logs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Defaults for NewWriter, and the longest content one record carries.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
	MaxLine         = 16 << 10
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction, so every record
// has the same overhead. time.RFC3339Nano parses it.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// maxRecord bounds a well-formed record: content plus time, stream and tag.
const maxRecord = MaxLine + 64

// Entry is one record read back from the log files.
type Entry struct {
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Partial bool      `json:"partial,omitempty"`
	Line    string    `json:"line"`
}

// ParseLine parses one record given without its trailing newline.
func ParseLine(b []byte) (Entry, error) {
	ts, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok {
		return Entry{}, errors.New("malformed log record: no space after the time")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Entry{}, fmt.Errorf("malformed log record: time %s: %w", strconv.Quote(string(ts)), err)
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return Entry{}, fmt.Errorf("malformed log record: time %s is outside years 0-9999 UTC", strconv.Quote(string(ts)))
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return Entry{}, errors.New("malformed log record: no space after the stream")
	}
	if !validStream(string(stream)) {
		return Entry{}, fmt.Errorf("malformed log record: stream %q is not stdout or stderr", stream)
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return Entry{}, errors.New("malformed log record: no space after the tag")
	}
	var partial bool
	switch string(tag) {
	case "F":
	case "P":
		partial = true
	default:
		return Entry{}, fmt.Errorf("malformed log record: tag %q is not F or P", tag)
	}
	return Entry{Time: t, Stream: string(stream), Partial: partial, Line: string(content)}, nil
}

func validStream(s string) bool { return s == "stdout" || s == "stderr" }

// appendRecord appends one record, newline included, to buf.
func appendRecord(buf []byte, t time.Time, stream string, partial bool, content []byte) []byte {
	buf = t.UTC().AppendFormat(buf, timeLayout)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	if partial {
		buf = append(buf, " P "...)
	} else {
		buf = append(buf, " F "...)
	}
	buf = append(buf, content...)
	return append(buf, '\n')
}
