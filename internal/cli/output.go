package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// output gathers what a command prints on stdout and writes it in one
// call when flushed: Main flushes once, when the command is over, so a
// table or a report leaves in a single write, whole, however many cells
// it has. Streams (logs) flush as they go.
type output struct {
	buf bytes.Buffer
	w   io.Writer
}

func (o *output) Write(p []byte) (int, error) { return o.buf.Write(p) }

// Flush writes what was gathered, in one call.
func (o *output) Flush() error {
	if o.buf.Len() == 0 {
		return nil
	}
	_, err := o.w.Write(o.buf.Bytes())
	o.buf.Reset()
	return err
}

// flushOver flushes once more than limit bytes are waiting: a long report
// (logs without -f) is not held in memory whole.
func (o *output) flushOver(limit int) error {
	if o.buf.Len() <= limit {
		return nil
	}
	return o.Flush()
}

// unbuffered flushes what was gathered and returns stdout itself, for
// byte streams whose every byte must pass at once (dial, debug).
func (o *output) unbuffered() io.Writer {
	o.Flush()
	return o.w
}

// printJSON writes v as indented JSON, in one write.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns; the first row is the header. It writes to
// w once: tabwriter writes cell by cell.
func table(w io.Writer, rows [][]string) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ago prints how long ago t was, coarsely: "3s", "5m", "2h", "4d".
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// printJSONLine writes v as one line of JSON (for streams).
func printJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

type errUsage string

func (e errUsage) Error() string { return string(e) }
