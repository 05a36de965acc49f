package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moatcloud/moat/internal/edge"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// countingHandler counts the records logged at Warn or above.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestEdgeCacheInstallLogsOnce: a master handing an edge a batch of
// forged entries gets them all refused, and the edge's log one line for
// the batch, not one per entry (a thousand lines a request, as often as
// the master likes).
func TestEdgeCacheInstallLogsOnce(t *testing.T) {
	var warned atomic.Int64
	log := slog.New(countingHandler{&warned})
	c, err := edge.NewCache(filepath.Join(t.TempDir(), "acme"), bytes.Repeat([]byte{7}, 32), log)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{log: log, edge: &edgeProxy{log: log, cache: c, outbox: edge.NewOutbox(c, log)}}
	in := nodeapi.EdgeCacheInstall{KeyID: c.KeyID()}
	for i := range nodeapi.MaxEdgeCacheEntries {
		in.Entries = append(in.Entries, nodeapi.EdgeCacheEntry{
			Hash: edge.NameHash(strings.Repeat("x", i) + ".test"),
			Data: append([]byte{2}, bytes.Repeat([]byte{byte(i)}, 40)...),
		})
	}
	body, _ := json.Marshal(in)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPut, "/v1/edge/cache", bytes.NewReader(body))
	if err := d.handleInstallEdgeCache(w, r); err != nil {
		t.Fatal(err)
	}
	var out nodeapi.EdgeCacheInstalled
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Refused != len(in.Entries) || out.Installed != 0 {
		t.Errorf("forged batch: %+v, want all %d refused", out, len(in.Entries))
	}
	if n := warned.Load(); n != 1 {
		t.Errorf("a batch of %d forged entries logged %d warnings, want 1", len(in.Entries), n)
	}
}

// TestEdgeCacheKeyMadeOnce: daemons starting at once on a node without a
// key all get the same one, made whole (0600, 32 bytes), never an error
// or a partial key.
func TestEdgeCacheKeyMadeOnce(t *testing.T) {
	for i := range 50 {
		path := filepath.Join(t.TempDir(), "acme.key")
		keys := make([][]byte, 6)
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for j := range keys {
			wg.Add(1)
			go func() { defer wg.Done(); keys[j], errs[j] = cacheKey(path) }()
		}
		wg.Wait()
		for j := range keys {
			if errs[j] != nil || len(keys[j]) != 32 || !bytes.Equal(keys[j], keys[0]) {
				t.Fatalf("round %d, start %d: %x, %v; want the key the others got, %x", i, j, keys[j], errs[j], keys[0])
			}
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
			t.Fatalf("round %d: the key file %v, %v; want 32 bytes, 0600", i, fi, err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".acme.key-*")); len(left) > 0 {
			t.Fatalf("round %d: temporary files left: %v", i, left)
		}
	}
}
