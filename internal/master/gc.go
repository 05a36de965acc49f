package master

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Garbage collection keeps every image in an app's rollback window (see
// imageRefs) on the master and on every node; nodes also keep what their
// containers use. An image imported or pulled within Config.GCGrace
// (DefaultGCGrace) stays too: an operator about to deploy it, a pull under
// way.
const (
	DefaultGCGrace    = 10 * time.Minute
	keepMaxAge        = 5 * time.Second  // how stale the keep list agents send may be
	DefaultGCInterval = 10 * time.Minute // how often the master looks at its disk
)

// keepList is the images every node must keep, and a version that
// changes when the list does.
type keepList struct {
	digests []string
	version string
	at      time.Time
}

type keepCache struct {
	mu   sync.Mutex
	list keepList
}

// keep returns the current keep list, recomputed at most every keepMaxAge:
// a thousand agents ask at every lease renewal.
func (m *Master) keep(ctx context.Context) (keepList, error) {
	m.keepCache.mu.Lock()
	defer m.keepCache.mu.Unlock()
	if time.Since(m.keepCache.list.at) < keepMaxAge {
		return m.keepCache.list, nil
	}
	refs, err := m.imageRefs(ctx)
	if err != nil {
		return keepList{}, err
	}
	var ds []string
	for d := range refs {
		ds = append(ds, string(d))
	}
	slices.Sort(ds)
	sum := sha256.Sum256([]byte(strings.Join(ds, ",")))
	m.keepCache.list = keepList{digests: ds, version: hex.EncodeToString(sum[:8]), at: time.Now()}
	return m.keepCache.list, nil
}

// forgetKeep makes the next keep() recompute: a deploy or rollback moved
// a window.
func (m *Master) forgetKeep() {
	m.keepCache.mu.Lock()
	m.keepCache.list.at = time.Time{}
	m.keepCache.mu.Unlock()
}

// syncKeep sends the node the keep list when it changed since the last
// time it was sent there.
func (a *agent) syncKeep(ctx context.Context) {
	k, err := a.deps.keep(ctx)
	if v := a.keptVersion.Load(); err != nil || (v != nil && k.version == *v) {
		return
	}
	if err := a.api.SetKeep(ctx, k.digests); err != nil {
		a.log.Debug("keep list not sent", "err", err)
		return
	}
	a.keptVersion.Store(&k.version)
}

// collect runs GC on the master's store.
func (m *Master) collect(ctx context.Context, dryRun bool, grace time.Duration) (image.GCResult, error) {
	refs, err := m.imageRefs(ctx)
	if err != nil {
		return image.GCResult{}, err
	}
	res, err := m.images.GC(ctx, image.GCOptions{
		Keep:   func(d digest.Digest) bool { return len(refs[d]) > 0 },
		Grace:  grace,
		DryRun: dryRun,
	})
	if err == nil && !dryRun && len(res.Images)+res.Blobs > 0 {
		for _, img := range res.Images {
			m.delivery.ForgetImage(string(img.Digest))
		}
		m.log.Info("images collected", "images", len(res.Images), "blobs", res.Blobs, "bytes", res.Bytes)
	}
	return res, err
}

// GC collects unused images on the master and on every node that is up,
// in parallel, and reports per place. A collection (not a dry run) is
// logged as actor's (httpapi records the request in the audit log).
func (m *Master) GC(ctx context.Context, req masterapi.GCRequest, actor string) ([]masterapi.GCReport, error) {
	reports, err := m.gc(ctx, req)
	if err == nil && !req.DryRun {
		m.log.Info("images collected", "by", actor)
	}
	return reports, err
}

// Stats counts the image bytes that travelled since the master started.
func (m *Master) Stats() masterapi.Stats { return m.delivery.Stats() }

func (m *Master) gc(ctx context.Context, req masterapi.GCRequest) ([]masterapi.GCReport, error) {
	grace := *m.cfg.GCGrace
	if req.Grace != nil {
		if *req.Grace < 0 {
			return nil, errs.Invalid("grace", "negative: %s", time.Duration(*req.Grace))
		}
		grace = time.Duration(*req.Grace)
	}
	dryRun := req.DryRun
	m.forgetKeep()
	k, err := m.keep(ctx)
	if err != nil {
		return nil, err
	}
	res, err := m.collect(ctx, dryRun, grace)
	if err != nil {
		return nil, err
	}
	reports := []masterapi.GCReport{report("master", res.Blobs, res.Layers, res.Bytes, res.Images)}
	m.mu.Lock()
	agents := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		agents = append(agents, a)
	}
	m.mu.Unlock()
	nodeReports := make([]masterapi.GCReport, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.api.GC(ctx, nodeapi.GCRequest{Keep: k.digests, DryRun: dryRun, Grace: req.Grace})
			rep := masterapi.GCReport{Where: a.name, Blobs: r.Blobs, Layers: r.Layers, Bytes: r.Bytes}
			for _, img := range r.Images {
				rep.Images = append(rep.Images, imageLabel(img.Name, img.Digest))
				if !dryRun {
					m.delivery.Collected(a.name, img.Digest) // it has it no more
				}
			}
			if err != nil {
				rep.Error = err.Error()
			} else {
				a.keptVersion.Store(&k.version)
				if !dryRun {
					a.imagesChanged()
				}
			}
			nodeReports[i] = rep
		}()
	}
	wg.Wait()
	slices.SortFunc(nodeReports, func(a, b masterapi.GCReport) int { return strings.Compare(a.Where, b.Where) })
	return append(reports, nodeReports...), nil
}

func report(where string, blobs, layers int, bytes int64, imgs []image.Image) masterapi.GCReport {
	r := masterapi.GCReport{Where: where, Blobs: blobs, Layers: layers, Bytes: bytes}
	for _, img := range imgs {
		r.Images = append(r.Images, imageLabel(img.Name, string(img.Digest)))
	}
	return r
}

func imageLabel(name, d string) string {
	if name != "" {
		return name + "@" + short(d)
	}
	return short(d)
}

// autoGC collects on the master when its disk passes the threshold.
func (m *Master) autoGC(ctx context.Context) {
	image.CollectWhenFull(ctx, m.cfg.Dir, m.cfg.GCThreshold, m.cfg.GCInterval, func(int) {
		if _, err := m.collect(ctx, false, *m.cfg.GCGrace); err != nil {
			m.log.Error("image gc", "err", err)
		}
	})
}
