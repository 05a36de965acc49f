package master

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// handleLogs merges the logs of an app's replicas into one stream of
// JSON lines, each naming its replica.
func (m *Master) handleLogs(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := m.db.GetApp(r.Context(), app); err != nil {
		return err
	}
	reps, err := m.db.Replicas(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := nodeapi.LogOptions{Follow: q.Get("follow") == "true", Tail: -1, Since: q.Get("since")}
	if t := q.Get("tail"); t != "" {
		if opts.Tail, err = strconv.Atoi(t); err != nil || opts.Tail < 0 {
			return errs.Invalid("query tail", "%q: want a number of lines", t)
		}
	}
	lines := make(chan masterapi.LogLine, 256)
	var wg sync.WaitGroup
	var away []masterapi.LogLine
	for _, rep := range reps {
		a := m.agent(rep.Node)
		if rep.App != app || rep.Desired != store.Run || a == nil {
			continue
		}
		if !m.nodeUp(rep.Node) {
			// Asking would wait until the node is back: say so instead.
			away = append(away, masterapi.LogLine{Replica: rep.ID, Node: rep.Node, LogEntry: nodeapi.LogEntry{
				Time: time.Now().UTC(), Stream: "moat", Line: "node " + rep.Node + " is not up: no logs from this replica until it is back"}})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.api.Logs(r.Context(), rep.ID, opts, func(e nodeapi.LogEntry) error {
				select {
				case lines <- masterapi.LogLine{Replica: rep.ID, Node: rep.Node, LogEntry: e}:
					return nil
				case <-r.Context().Done():
					return r.Context().Err()
				}
			})
		}()
	}
	go func() {
		for _, l := range away {
			select {
			case lines <- l:
			case <-r.Context().Done():
			}
		}
		wg.Wait()
		close(lines)
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for l := range lines {
		if err := enc.Encode(l); err != nil {
			return nil
		}
		if flusher != nil && len(lines) == 0 {
			flusher.Flush()
		}
	}
	return nil
}
