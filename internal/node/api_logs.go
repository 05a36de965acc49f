package node

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/logs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// handleLogs streams a container's output as JSON lines (nodeapi.LogEntry).
// Query: tail=N, since=RFC3339-time|duration-ago, follow=true.
func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) error {
	c, err := d.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	opts, err := logOptions(r)
	if err != nil {
		return err
	}
	if opts.Follow {
		opts.Stop = d.untilStopped(r.Context(), c)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	err = logs.Read(r.Context(), filepath.Join(c.dir, "logs"), opts, func(e logs.Entry) error {
		if err := enc.Encode(nodeapi.LogEntry{Time: e.Time, Stream: e.Stream, Partial: e.Partial, Line: e.Line}); err != nil {
			return err
		}
		if opts.Follow && flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		d.log.Warn("log stream ended", "container", c.rec.ID, "err", err)
	}
	return nil // the status line is sent: errors can only end the stream
}

func logOptions(r *http.Request) (logs.ReadOptions, error) {
	q := r.URL.Query()
	opts := logs.ReadOptions{Tail: -1}
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return opts, errs.Invalid("query tail", "%q: want a number of lines", v)
		}
		opts.Tail = n
	}
	if v := q.Get("since"); v != "" {
		t, err := parseSince(v, time.Now())
		if err != nil {
			return opts, err
		}
		opts.Since = t
	}
	follow, err := queryBool(r, "follow")
	opts.Follow = follow
	return opts, err
}

// parseSince accepts an RFC 3339 time or a duration meaning "that long ago".
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errs.Invalid("query since", "%q: want an RFC 3339 time or a duration such as 10m", v)
}

// untilStopped returns a channel closed once the container has stopped for
// good: exited and not about to restart.
func (d *Daemon) untilStopped(ctx context.Context, c *container) <-chan struct{} {
	stop := make(chan struct{})
	go func() {
		for {
			c.mu.Lock()
			state, changed := c.rec.State, c.changedChan()
			c.mu.Unlock()
			if state != nodeapi.StateRunning && state != nodeapi.StateRestarting {
				close(stop)
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return stop
}
