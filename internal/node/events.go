package node

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// hub fans container changes out to event streams (the master holds one).
// A subscriber that falls behind is dropped, not waited for: it lists the
// containers again and resubscribes.
type hub struct {
	mu   sync.Mutex
	subs map[chan nodeapi.Event]struct{}
}

func (h *hub) subscribe() (<-chan nodeapi.Event, func()) {
	ch := make(chan nodeapi.Event, 256)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan nodeapi.Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

func (h *hub) publish(e nodeapi.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// changed records that c's state changed: waiters wake, streams hear.
// c.mu is held.
func (d *Daemon) changed(c *container) {
	c.notify()
	c.rec.Seq = d.seq.Add(1)
	w := c.rec.wire()
	d.events.publish(nodeapi.Event{Type: "container", Container: &w})
}

// handleEvents streams container changes as JSON lines until the client
// goes away. It opens with every container, then a "synced" event: the
// subscription starts before the snapshot, so no change falls between.
func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) error {
	ch, cancel := d.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for _, c := range d.List() {
		if err := enc.Encode(nodeapi.Event{Type: "container", Container: &c}); err != nil {
			return nil
		}
	}
	if err := enc.Encode(nodeapi.Event{Type: "synced"}); err != nil {
		return nil
	}
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return nil // fell behind: the client resynchronises
			}
			if err := enc.Encode(e); err != nil {
				return nil
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
