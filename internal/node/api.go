package node

import (
	"cmp"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/version"
	"github.com/moatcloud/moat/internal/wire"
)

// route is one API route: a ServeMux pattern and its handler.
type route struct {
	pattern string
	handle  func(http.ResponseWriter, *http.Request) error
}

// routeTable is the node API. Every path is versioned; every error is
// JSON {"error": "..."} with a status from errs.HTTPStatus. Which role may
// call which route is in roles.go.
func (d *Daemon) routeTable() []route {
	return []route{
		{"GET /v1/ping", func(w http.ResponseWriter, r *http.Request) error {
			return writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}},
		{"GET /v1/info", d.handleInfo},
		{"GET /v1/audit", d.handleAudit},
		{"GET /v1/images", d.handleImages},
		{"POST /v1/images/import", d.handleImport},
		{"GET /v1/images/{ref...}", d.handleImage},
		{"DELETE /v1/images/{ref...}", d.handleRemoveImage},
		{"GET /v1/containers", d.handleContainers},
		{"POST /v1/containers", d.handleCreate},
		{"GET /v1/containers/{id}", d.handleInspect},
		{"POST /v1/containers/{id}/start", d.handleStart},
		{"POST /v1/containers/{id}/stop", d.handleStop},
		{"DELETE /v1/containers/{id}", d.handleRemove},
		{"GET /v1/containers/{id}/logs", d.handleLogs},
		{"PUT /v1/containers/{id}/secrets", d.handleUpdateSecrets},
		{"POST /v1/containers/{id}/debug", d.handleDebug},
		{"GET /v1/events", d.handleEvents},
		{"POST /v1/lease", d.handleLease},
		{"POST /v1/blobs/missing", d.handleMissingBlobs},
		{"POST /v1/images/pull", d.handlePull},
		{"POST /v1/signatures/{ref...}", d.handleAddSignature},
		{"PUT /v1/images/keep", d.handleKeep},
		{"POST /v1/blobs/fetch", d.handleFetch},
		{"POST /v1/images/gc", d.handleGC},
		{"PUT /v1/links", d.handleSetLinks},
		{"GET /v1/links", d.handleLinks},
		{"GET /v1/edge/cache/outbox", d.handleEdgeCacheOutbox},
		{"PUT /v1/edge/cache", d.handleInstallEdgeCache},
		{"GET /v1/metrics", d.handleMetrics},
		{"POST /v1/hostkey", d.handleHostKey},
	}
}

// routes is the API's mux; roles.go decides who reaches which route.
func (d *Daemon) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range d.routeTable() {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.handle(w, r); err != nil {
				d.writeError(w, r, err)
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.writeError(w, r, errs.Invalid("", "no API at %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) error { return wire.WriteJSON(w, status, v) }

// writeError answers with the error's status; only server-side failures
// are logged: a bad request is the caller's to report.
func (d *Daemon) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if wire.WriteError(w, err) {
		d.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func (d *Daemon) handleInfo(w http.ResponseWriter, r *http.Request) error {
	info := nodeapi.NodeInfo{
		Version: version.Version, OS: osName(), Arch: goruntime.GOARCH, CPUs: cmp.Or(d.cfg.CPUs, goruntime.NumCPU()),
		CgroupMode: runtime.CgroupMode(), Root: d.cfg.Root,
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	info.Hostname, _ = os.Hostname()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		info.MemoryBytes = int64(si.Totalram) * int64(si.Unit)
	}
	if d.cfg.Memory > 0 {
		info.MemoryBytes = d.cfg.Memory
	}
	var fs unix.Statfs_t
	if unix.Statfs(d.cfg.Root, &fs) == nil {
		info.DiskBytes = int64(fs.Blocks) * fs.Bsize
		info.DiskUsedBytes = int64(fs.Blocks-fs.Bfree) * fs.Bsize
		info.DiskFreeBytes = int64(fs.Bavail) * fs.Bsize
	}
	info.Runc, _ = d.runc.Version(r.Context())
	info.RequireSigned, info.Signers = d.cfg.RequireSigned, d.signerNames()
	if d.cfg.Edge {
		info.Edge, info.EdgeHTTP, info.EdgeHTTPS = true, d.cfg.EdgeHTTP, d.cfg.EdgeHTTPS
	}
	info.ImageBytes = d.images.DiskUsage()
	if _, err := os.Stat(d.cfg.PeerKey); err == nil {
		info.PeerFetch = true
	}
	for _, c := range d.List() {
		info.Containers++
		if c.State == nodeapi.StateRunning {
			info.Running++
		}
	}
	return writeJSON(w, http.StatusOK, info)
}

// osName is PRETTY_NAME from /etc/os-release.
func osName() string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

// queryBool parses a boolean query parameter ("1", "true"; absent: false).
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errs.Invalid("query "+name, "%q: want true or false", v)
	}
	return b, nil
}

// queryDuration parses a duration query parameter; nil when absent.
func queryDuration(r *http.Request, name string) (*time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return nil, errs.Invalid("query "+name, "%q: want a duration such as 10s", v)
	}
	return &d, nil
}
