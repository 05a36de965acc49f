package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Image garbage collection on a node keeps what its containers use, what
// the master last said to keep (every app's rollback window), and what
// arrived in the last DefaultGCGrace (a deploy under way has pulled images it has
// not yet run). It runs on the master's request, and by itself when the
// disk holding the node's root passes Config.GCThreshold percent.
const (
	DefaultGCGrace    = 10 * time.Minute
	DefaultGCInterval = time.Minute
)

func keepPath(root string) string { return nodeapi.Layout{Root: root}.Keep() }

// loadKeep reads the keep list the master last sent; ok is false if it
// never sent one.
func loadKeep(root string) (keep []string, ok bool) {
	b, err := os.ReadFile(keepPath(root))
	if err != nil {
		return nil, false
	}
	var req nodeapi.KeepRequest
	if json.Unmarshal(b, &req) != nil {
		return nil, false
	}
	return req.Keep, true
}

func (d *Daemon) setKeep(keep []string) error {
	for i, k := range keep {
		if err := digest.Digest(k).Validate(); err != nil {
			return errs.Invalid(fmt.Sprintf("keep[%d]", i), "%q: %v", k, err)
		}
	}
	slices.Sort(keep)
	if old, ok := loadKeep(d.cfg.Root); ok && slices.Equal(old, keep) {
		return nil
	}
	b, _ := json.Marshal(nodeapi.KeepRequest{Keep: keep})
	tmp := keepPath(d.cfg.Root) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, keepPath(d.cfg.Root))
}

// collect runs image GC with the stored keep list.
func (d *Daemon) collect(ctx context.Context, dryRun bool, grace time.Duration) (image.GCResult, error) {
	keep, _ := loadKeep(d.cfg.Root)
	d.gcMu.Lock()
	defer d.gcMu.Unlock()
	res, err := d.images.GC(ctx, image.GCOptions{
		Keep: func(m digest.Digest) bool {
			return slices.Contains(keep, string(m)) || d.imageInUse(m) != ""
		},
		Grace:  grace,
		DryRun: dryRun,
	})
	if err == nil && !dryRun && len(res.Images)+res.Blobs+res.Layers > 0 {
		d.log.Info("images collected", "images", len(res.Images), "blobs", res.Blobs, "layers", res.Layers, "bytes", res.Bytes)
	}
	return res, err
}

// autoGC collects when the disk fills past the threshold, once the master
// has said what to keep (before that, the node cannot know what a
// rollback would need, and keeps everything).
func (d *Daemon) autoGC(ctx context.Context) {
	image.CollectWhenFull(ctx, d.cfg.Root, d.cfg.GCThreshold, d.cfg.GCInterval, func(used int) {
		if _, ok := loadKeep(d.cfg.Root); !ok {
			d.log.Warn("disk filling but no keep list from the master yet: not collecting images", "used", used)
			return
		}
		if _, err := d.collect(ctx, false, *d.cfg.GCGrace); err != nil {
			d.log.Error("image gc", "err", err)
		}
	})
}

func (d *Daemon) handleKeep(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.KeepRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	if err := d.setKeep(req.Keep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) handleGC(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.GCRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	if err := d.setKeep(req.Keep); err != nil {
		return err
	}
	grace := *d.cfg.GCGrace
	if req.Grace != nil {
		if *req.Grace < 0 {
			return errs.Invalid("grace", "negative: %s", time.Duration(*req.Grace))
		}
		grace = time.Duration(*req.Grace)
	}
	res, err := d.collect(r.Context(), req.DryRun, grace)
	if err != nil {
		return err
	}
	out := nodeapi.GCResult{Images: []nodeapi.Image{}, Blobs: res.Blobs, Layers: res.Layers, Bytes: res.Bytes}
	for _, img := range res.Images {
		out.Images = append(out.Images, image.Describe(img))
	}
	return writeJSON(w, http.StatusOK, out)
}

// cleanInbox removes uploads nobody pulled within a day: an upload cut
// short and never resumed, or one for a deploy that was given up.
func (d *Daemon) cleanInbox() {
	filepath.WalkDir(d.cfg.layout().Inbox(), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				d.log.Warn("stale upload not removed", "path", path, "err", rmErr)
			}
		}
		return nil
	})
}
