package master_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// simNode is a simulated node: the node API the master calls, answered
// from memory. It has every blob (nothing is ever uploaded to it), keeps
// the images the master has it pull, and runs containers at once: a
// created and started container is reported running, then healthy
// simHealthyAfter later if it has a health check, through the event
// stream in the node daemon's format (internal/node/events.go).
type simNode struct {
	name  string
	stats *simStats

	mu         sync.Mutex
	seq        uint64
	containers map[string]*nodeapi.Container
	images     map[string]nodeapi.Image // by digest and by name
	subs       map[chan nodeapi.Event]struct{}
	metrics    simMetrics // its metrics ring (scale_metrics_test.go)
}

// simHealthyAfter: a started container with a health check passes its
// first one this long after it starts (the node checks every 50 ms until
// the first success).
const simHealthyAfter = 50 * time.Millisecond

// simStats counts, over every simulated node, what the master asked.
type simStats struct {
	keepalives, creates, pulls, streams atomic.Int64

	mu         sync.Mutex
	unexpected []string // calls outside the simulated API
}

func (s *simStats) unexpectedCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unexpected)
}

func newSimNode(name string, stats *simStats) *simNode {
	return &simNode{name: name, stats: stats, containers: map[string]*nodeapi.Container{},
		images: map[string]nodeapi.Image{}, subs: map[chan nodeapi.Event]struct{}{}}
}

// routes is the node API as the master uses it; see internal/node/api.go.
func (n *simNode) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				wire.WriteError(w, err)
			}
		})
	}
	handle("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	handle("GET /v1/info", func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, n.info())
	})
	handle("POST /v1/lease", func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, nodeapi.Decode(r.Body, &nodeapi.Lease{}))
	})
	handle("PUT /v1/images/keep", func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, nodeapi.Decode(r.Body, &nodeapi.KeepRequest{}))
	})
	handle("POST /v1/images/gc", func(w http.ResponseWriter, r *http.Request) error {
		if err := nodeapi.Decode(r.Body, &nodeapi.GCRequest{}); err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, nodeapi.GCResult{Images: []nodeapi.Image{}})
	})
	handle("GET /v1/events", n.handleEvents)
	handle("GET /v1/metrics", n.handleMetrics)
	n.imageRoutes(handle)
	n.containerRoutes(handle)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.stats.mu.Lock()
		n.stats.unexpected = append(n.stats.unexpected, r.Method+" "+r.URL.Path)
		n.stats.mu.Unlock()
		wire.WriteError(w, errs.Invalid("", "no API at %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// info: 2 CPUs and 4 GiB, room for 20 replicas of 100m and 64 MiB; no
// signature required (the master's check that some node accepts the
// image passes whoever signed it).
func (n *simNode) info() nodeapi.NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	info := nodeapi.NodeInfo{Version: "simulated", Hostname: n.name, OS: "simulated", Arch: runtime.GOARCH,
		Runc: "runc simulated", CgroupMode: "v2", CPUs: 2, MemoryBytes: 4 << 30, Root: "/var/lib/moat",
		Containers: len(n.containers)}
	for _, c := range n.containers {
		if c.State == nodeapi.StateRunning {
			info.Running++
		}
	}
	return info
}

// handleEvents streams container changes as JSON lines, as the node
// daemon does: every container, then "synced", then changes as they
// happen. The subscription starts before the snapshot, so no change falls
// between; a subscriber that falls behind is dropped.
func (n *simNode) handleEvents(w http.ResponseWriter, r *http.Request) error {
	n.stats.streams.Add(1)
	ch := make(chan nodeapi.Event, 256)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	defer n.unsubscribe(ch)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for _, c := range n.list() {
		if err := enc.Encode(nodeapi.Event{Type: "container", Container: &c}); err != nil {
			return nil
		}
	}
	if err := enc.Encode(nodeapi.Event{Type: "synced"}); err != nil {
		return nil
	}
	flusher.Flush()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return nil // fell behind: the master resubscribes
			}
			if err := enc.Encode(e); err != nil {
				return nil
			}
			flusher.Flush()
		case <-r.Context().Done():
			return nil
		}
	}
}

func (n *simNode) unsubscribe(ch chan nodeapi.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.subs[ch]; ok {
		delete(n.subs, ch)
		close(ch)
	}
}

// publish sends an event to every stream. n.mu is held, so events leave
// in the order of their Seq.
func (n *simNode) publish(e nodeapi.Event) {
	for ch := range n.subs {
		select {
		case ch <- e:
		default:
			delete(n.subs, ch)
			close(ch)
		}
	}
}

// changed numbers a change of c and streams it. n.mu is held.
func (n *simNode) changed(c *nodeapi.Container) {
	n.seq++
	c.Seq = n.seq
	cp := *c
	n.publish(nodeapi.Event{Type: "container", Container: &cp})
}

func (n *simNode) list() []nodeapi.Container {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]nodeapi.Container, 0, len(n.containers))
	for _, c := range n.containers {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b nodeapi.Container) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// imageRoutes deliver images: every blob is here already, so the master
// only has the node pull (assemble) the image and keep its signatures.
func (n *simNode) imageRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		n.mu.Lock()
		img, ok := n.images[r.PathValue("ref")]
		n.mu.Unlock()
		if !ok {
			return fmt.Errorf("image %q: %w", r.PathValue("ref"), errs.ErrNotFound)
		}
		return wire.WriteJSON(w, http.StatusOK, img)
	})
	handle("POST /v1/blobs/missing", func(w http.ResponseWriter, r *http.Request) error {
		if err := nodeapi.Decode(r.Body, &nodeapi.BlobsRequest{}); err != nil {
			return err
		}
		return wire.WriteJSON(w, http.StatusOK, nodeapi.BlobsRequest{Digests: []string{}})
	})
	handle("POST /v1/images/pull", func(w http.ResponseWriter, r *http.Request) error {
		var req nodeapi.PullRequest
		if err := nodeapi.Decode(r.Body, &req); err != nil {
			return err
		}
		n.stats.pulls.Add(1)
		img := nodeapi.Image{Name: req.Name, Digest: req.Digest, Layers: 1, Imported: time.Now().UTC()}
		for i := range req.Signatures {
			img.Signers = append(img.Signers, fmt.Sprintf("SHA256:simulated-signer-%d", i))
		}
		return wire.WriteJSON(w, http.StatusOK, n.keepImage(img))
	})
	handle("POST /v1/signatures/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		if err := nodeapi.Decode(r.Body, &nodeapi.SignRequest{}); err != nil {
			return err
		}
		n.mu.Lock()
		img, ok := n.images[r.PathValue("ref")]
		n.mu.Unlock()
		if !ok {
			return fmt.Errorf("image %q: %w", r.PathValue("ref"), errs.ErrNotFound)
		}
		img.Signers = append(slices.Clone(img.Signers), fmt.Sprintf("SHA256:simulated-signer-%d", len(img.Signers)))
		return wire.WriteJSON(w, http.StatusOK, n.keepImage(img))
	})
}

func (n *simNode) keepImage(img nodeapi.Image) nodeapi.Image {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.images[img.Digest] = img
	if img.Name != "" {
		n.images[img.Name] = img
	}
	return img
}

// containerRoutes create, start, stop, remove, inspect and list
// containers; see internal/node/api_containers.go.
func (n *simNode) containerRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/containers", func(w http.ResponseWriter, r *http.Request) error {
		return wire.WriteJSON(w, http.StatusOK, n.list())
	})
	handle("POST /v1/containers", n.handleCreate)
	handle("GET /v1/containers/{id}", func(w http.ResponseWriter, r *http.Request) error {
		return n.reply(w, http.StatusOK, r.PathValue("id"), nil)
	})
	handle("POST /v1/containers/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		return n.reply(w, http.StatusOK, r.PathValue("id"), func(c *nodeapi.Container) error {
			if c.State == nodeapi.StateRunning {
				return fmt.Errorf("container %q is already running: %w", c.ID, errs.ErrConflict)
			}
			n.start(c)
			return nil
		})
	})
	handle("POST /v1/containers/{id}/stop", func(w http.ResponseWriter, r *http.Request) error {
		return n.reply(w, http.StatusOK, r.PathValue("id"), func(c *nodeapi.Container) error {
			if c.State == nodeapi.StateRunning {
				code := 0
				c.State, c.Pid, c.ExitCode, c.Finished, c.Health = nodeapi.StateExited, 0, &code, time.Now().UTC(), ""
				n.changed(c)
			}
			return nil
		})
	})
	handle("DELETE /v1/containers/{id}", n.handleRemove)
}

// reply answers with container id after f (if not nil) has changed it,
// under n.mu.
func (n *simNode) reply(w http.ResponseWriter, status int, id string, f func(*nodeapi.Container) error) error {
	n.mu.Lock()
	c, ok := n.containers[id]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("container %q: %w", id, errs.ErrNotFound)
	}
	var err error
	if f != nil {
		err = f(c)
	}
	out := *c
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return wire.WriteJSON(w, status, out)
}

// handleCreate creates a container from a valid spec and, unless
// ?start=false, starts it.
func (n *simNode) handleCreate(w http.ResponseWriter, r *http.Request) error {
	spec, err := nodeapi.DecodeContainerSpec(r.Body)
	if err != nil {
		return err
	}
	start := true
	if q := r.URL.Query(); q.Has("start") {
		if start, err = strconv.ParseBool(q.Get("start")); err != nil {
			return errs.Invalid("query start", "%q is not a boolean", q.Get("start"))
		}
	}
	n.stats.creates.Add(1)
	n.mu.Lock()
	img, ok := n.images[spec.Image]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("image %q: %w", spec.Image, errs.ErrNotFound)
	}
	id := spec.Name
	if id == "" {
		id = fmt.Sprintf("c%06d", n.seq+1)
	}
	if _, taken := n.containers[id]; taken {
		n.mu.Unlock()
		return fmt.Errorf("container %q already exists: %w", id, errs.ErrConflict)
	}
	c := &nodeapi.Container{ID: id, Image: spec.Image, ImageDigest: img.Digest, State: nodeapi.StateCreated,
		Created: time.Now().UTC(), Spec: spec}
	n.containers[id] = c
	n.changed(c)
	if start {
		n.start(c)
	}
	out := *c
	n.mu.Unlock()
	return wire.WriteJSON(w, http.StatusCreated, out)
}

// start runs c: running at once, healthy a moment later if it has a
// health check. n.mu is held.
func (n *simNode) start(c *nodeapi.Container) {
	c.State, c.Pid, c.Started, c.ExitCode, c.Finished = nodeapi.StateRunning, 1000+int(n.seq), time.Now().UTC(), nil, time.Time{}
	c.Health = ""
	if c.Spec.Health != nil {
		c.Health = nodeapi.HealthStarting
		started := c.Started
		time.AfterFunc(simHealthyAfter, func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if cur, ok := n.containers[c.ID]; ok && cur == c && c.Started == started && c.State == nodeapi.StateRunning {
				c.Health = nodeapi.HealthHealthy
				n.changed(c)
			}
		})
	}
	n.changed(c)
}

// handleRemove deletes a container; a running one only with ?force=true.
func (n *simNode) handleRemove(w http.ResponseWriter, r *http.Request) error {
	force := r.URL.Query().Get("force") == "true"
	id := r.PathValue("id")
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.containers[id]
	switch {
	case !ok:
		return fmt.Errorf("container %q: %w", id, errs.ErrNotFound)
	case c.State == nodeapi.StateRunning && !force:
		return fmt.Errorf("container %q is running; stop it first or force: %w", id, errs.ErrConflict)
	}
	delete(n.containers, id)
	n.publish(nodeapi.Event{Type: "removed", ID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
