package master

import (
	"context"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Logs merges the logs of an app's replicas into one stream, each line
// naming its replica; a replica whose node is not up gets a line saying
// so. The channel is closed when every replica's stream has ended, or
// ctx has: a caller that stops reading ends ctx.
func (m *Master) Logs(ctx context.Context, app string, opts nodeapi.LogOptions) (<-chan masterapi.LogLine, error) {
	app = appKey(ctx, app)
	if _, err := m.db.GetApp(ctx, app); err != nil {
		return nil, err
	}
	reps, err := m.db.Replicas(ctx)
	if err != nil {
		return nil, err
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
			a.api.Logs(ctx, rep.ID, opts, func(e nodeapi.LogEntry) error {
				select {
				case lines <- masterapi.LogLine{Replica: rep.ID, Node: rep.Node, LogEntry: e}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}()
	}
	go func() {
		for _, l := range away {
			select {
			case lines <- l:
			case <-ctx.Done():
			}
		}
		wg.Wait()
		close(lines)
	}()
	return lines, nil
}
