// Package node is the node daemon: it keeps the node's image store,
// creates and supervises containers (through one shim each, so containers
// outlive the daemon), applies restart policies, re-adopts containers after
// a restart, and serves its HTTP API on a unix socket only.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/wire"
)

// Config configures a node daemon.
type Config struct {
	Root         string   // state: images, containers, runc state
	Socket       string   // the API's unix socket
	Runc         string   // runc binary
	RuncRoot     string   // runc --root; default Root/runc
	CgroupParent string   // cgroup under which containers live; default "moat"
	Exe          string   // the moat binary shims run as; default this executable
	LogMaxSize   int64    // per log file; default logs.DefaultMaxSize
	LogMaxFiles  int      // default logs.DefaultMaxFiles
	MaxLayer     int64    // unpacked bytes per layer; default layer.DefaultMaxBytes
	AllowBind    []string // host directories bind mounts may come from; default Root/volumes
	// RequireSigned: containers start only from images signed by a key in
	// AllowedSigners (OpenSSH allowed_signers) and not in RevokedSigners.
	// Both files are the operator's: nothing in the API changes them.
	RequireSigned  bool
	AllowedSigners string // default /etc/moat/allowed_signers
	RevokedSigners string // default /etc/moat/revoked_signers
	// GCThreshold: collect unused images when the disk holding Root is
	// this full (percent); 0 turns automatic collection off.
	GCThreshold int
	// GCInterval is how often the disk is looked at (default a minute);
	// GCGrace keeps images pulled more recently than this (default 10
	// minutes: a deploy under way has pulled what it has not yet run).
	GCInterval time.Duration
	GCGrace    *time.Duration
	PeerKey    string // default DefaultPeerKey
	SecretsKey string // the secrets key file (age identities); default nodeapi.SecretsKey
	// CPUs is the CPU capacity the node offers the scheduler, in cores:
	// the machine's when 0. More overcommits, fewer holds some back.
	CPUs int
	// Memory is the memory capacity the node offers the scheduler, in
	// bytes: the machine's when 0 (a local cloud's server of a smaller
	// type says its type's).
	Memory int64
	// AllowPrivileges are privileges the operator grants on this node to
	// any container that asks, declared by its image or not (package
	// privilege). Empty: only what images declare.
	AllowPrivileges privilege.Set
	// AuthorizedKeys is root's authorized_keys, where the link keys of
	// grants go (default nodeapi.AuthorizedKeys). The daemon changes only
	// the lines it marked as a link key's.
	AuthorizedKeys string
	// Edge makes the node an edge: it serves the link table's ingress on
	// EdgeHTTP and EdgeHTTPS (default :80 and :443). Only the operator's
	// node.conf says so, never the master. ACME certificates come from
	// ACMEDirectory (default Let's Encrypt's), with ACMEEmail for expiry
	// notices; ACMECAFile adds roots to trust for the directory.
	Edge                                 bool
	EdgeHTTP, EdgeHTTPS                  string
	ACMEEmail, ACMEDirectory, ACMECAFile string
	// MetricsInterval is how often the node samples itself, its
	// containers and its routes into its metrics ring (metrics.go);
	// default DefaultMetricsInterval, at least MinMetricsInterval.
	MetricsInterval time.Duration
	metricsSlots    int // the ring's slots; a test's smaller ring
}

// Daemon is a running node daemon.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	images *image.Store
	runc   runtime.Runc

	ctx    context.Context // the daemon's lifetime; restart timers stop with it
	events hub
	seq    atomic.Uint64 // orders container reports
	lease  *lease
	gcMu   sync.RWMutex // held to read by container creation, to write by image GC
	// starts bounds the containers starting at once (shim and runc) to
	// four per CPU: enough that a failover's fifty keep every CPU busy
	// (runc waits on the kernel as much as it computes), few enough that a
	// thousand do not thrash.
	starts chan struct{}
	// mu guards the containers map. It is taken while a container's own
	// lock is held (Remove, discard), so a container's lock is never taken
	// while mu is held: copy the pointers, let mu go, then lock each.
	mu         sync.Mutex
	containers map[string]*container
	links      *links
	edge       *edgeProxy // nil unless cfg.Edge
	metrics    *metrics
	// ingressIgnored: a table's ingress reached a node that is no edge,
	// and that was logged.
	ingressIgnored atomic.Bool
}

// layout is where the node's state lies under Root.
func (c *Config) layout() nodeapi.Layout { return nodeapi.Layout{Root: c.Root} }

func (c *Config) setDefaults() error {
	if c.Root == "" {
		return errors.New("node: no root directory")
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return err
	}
	c.Root = root
	if c.Socket == "" {
		c.Socket = filepath.Join(root, "node.sock")
	}
	if c.Runc == "" {
		c.Runc = "runc"
	}
	if c.RuncRoot == "" {
		c.RuncRoot = c.layout().Runc()
	}
	if c.CgroupParent == "" {
		c.CgroupParent = "moat"
	}
	if c.GCInterval <= 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.GCGrace == nil {
		g := DefaultGCGrace
		c.GCGrace = &g
	}
	if c.Exe == "" {
		if c.Exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find own executable: %w", err)
		}
	}
	if len(c.AllowBind) == 0 {
		c.AllowBind = []string{c.layout().Volumes()}
	}
	if c.AllowedSigners == "" {
		c.AllowedSigners = DefaultAllowedSigners
	}
	if c.RevokedSigners == "" {
		c.RevokedSigners = DefaultRevokedSigners
	}
	if c.PeerKey == "" {
		c.PeerKey = DefaultPeerKey
	}
	if c.SecretsKey == "" {
		c.SecretsKey = nodeapi.SecretsKey
	}
	if c.AuthorizedKeys == "" {
		c.AuthorizedKeys = nodeapi.AuthorizedKeys
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = DefaultMetricsInterval
	}
	if c.MetricsInterval < MinMetricsInterval {
		return fmt.Errorf("node: metrics interval %s is under the minimum %s", c.MetricsInterval, MinMetricsInterval)
	}
	if c.Edge && c.EdgeHTTP == "" && c.EdgeHTTPS == "" {
		c.EdgeHTTP, c.EdgeHTTPS = ":80", ":443"
	}
	return nil
}

// New opens the node's state under cfg.Root.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, cfg.layout().Containers(), cfg.RuncRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	store, err := image.Open(cfg.layout().Images(), image.Options{MaxLayerBytes: cfg.MaxLayer})
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg: cfg, log: log, images: store,
		runc:       runtime.Runc{Binary: cfg.Runc, Root: cfg.RuncRoot},
		containers: map[string]*container{},
		starts:     make(chan struct{}, 4*goruntime.NumCPU()),
		ctx:        context.Background(),
		lease:      loadLease(cfg.layout().Lease()),
	}
	d.links = newLinks(log, cfg.layout().Links(), cfg.AuthorizedKeys, d.events.subscribe, d.List)
	if cfg.Edge {
		if d.edge, err = newEdgeProxy(cfg, log, d.links); err != nil {
			return nil, err
		}
	}
	d.metrics = d.openMetrics()
	return d, nil
}

// Serve re-adopts the node's containers, then serves the API on the unix
// socket until ctx ends. Containers keep running after it returns.
func (d *Daemon) Serve(ctx context.Context) error {
	d.ctx = ctx
	if err := d.adoptAll(); err != nil {
		return err
	}
	go d.fence(ctx)
	d.links.start(ctx) // the saved table's listeners, before the master is back
	d.applyIngress()
	if d.edge != nil {
		go d.edge.run(ctx, d.cfg.EdgeHTTP, d.cfg.EdgeHTTPS)
	}
	go d.autoGC(ctx)
	go d.metricsLoop(ctx)
	d.cleanInbox()
	mux := d.routes()
	err := wire.Serve(ctx, "node.pid", d.log, func() {
		d.log.Info("node serving", "socket", d.cfg.Socket, "root", d.cfg.Root, "containers", len(d.containers))
	},
		wire.Endpoint{Socket: d.cfg.Socket, Handler: d.forRole(mux, nodeapi.RoleRoot)},
		// The gate relays the master's sessions here: see roles.go.
		wire.Endpoint{Socket: nodeapi.RoleSocket(d.cfg.Socket, nodeapi.RoleMaster), Handler: d.forRole(mux, nodeapi.RoleMaster)})
	if err != nil {
		return err
	}
	d.log.Info("node stopped; containers keep running")
	return nil
}
