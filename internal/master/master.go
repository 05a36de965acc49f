// Package master is the control plane: it keeps desired state in SQLite,
// holds an SSH connection to every node, watches what runs there through
// each node's event stream, and reconciles — places replicas with the
// scheduler, rolls revisions out under their update strategy, replaces
// replicas of dead nodes, fences singletons, has images delivered
// (package delivery) — and serves its API on a unix socket (package
// httpapi).
package master

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/master/delivery"
	"github.com/moatcloud/moat/internal/master/httpapi"
	"github.com/moatcloud/moat/internal/master/store"
	metricstore "github.com/moatcloud/moat/internal/metrics/archive"
	"github.com/moatcloud/moat/internal/metrics/prom"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/wire"
)

// Config configures the master.
type Config struct {
	Dir    string // state: master.db, images/, master_ed25519
	Socket string // the API's unix socket
	// LeaseTTL is how long a node may run fenced (singleton) containers
	// without hearing from the master.
	LeaseTTL time.Duration
	// SingletonGrace is how long a singleton's node must be down before
	// the singleton starts elsewhere; longer than LeaseTTL.
	SingletonGrace    time.Duration
	KeepaliveInterval time.Duration
	DownAfter         time.Duration
	// KeepRevisions is each app's rollback window: the images of its last
	// KeepRevisions distinct revisions are never collected.
	KeepRevisions int
	// GCThreshold: collect unused images when the master's disk is this
	// full (percent); 0 never by itself.
	GCThreshold int
	// GCInterval is how often the master looks at its disk (default 10
	// minutes); GCGrace keeps images imported more recently than this,
	// on the master and, when it collects by itself, on nodes (default 10
	// minutes: an operator about to deploy them).
	GCInterval time.Duration
	GCGrace    *time.Duration
	// MaxPushes bounds the uploads the master makes at once (nodes also
	// fetch images from each other, which this does not count).
	MaxPushes int
	Log       *slog.Logger
	// APISocket is where operators' SSH logins reach the master through
	// moat api ("" for none), APIUser the unix user they log in as, and
	// UserCAFile where the trusted CAs are written for sshd (apisock.go).
	APISocket  string
	APIUser    string
	UserCAFile string
	// PrometheusListen, when set, is where the master serves /metrics
	// besides its API's GET /v1/prometheus: 127.0.0.1:PORT (loopback
	// only) or unix:/path (package prom).
	PrometheusListen string
	// Pools times the pool manager (pools_manager.go); zero: defaults.
	Pools PoolSettings
	// MoatBinary is the moat a local pool's machines run (default: this
	// executable).
	MoatBinary string
	// AppScaleInterval is how often the app autoscaler decides (default
	// appscale.DefaultPeriod, 15 s); AppScaleWindow its scale-down
	// stabilisation (default appscale.DefaultWindow, 5 min).
	AppScaleInterval time.Duration
	AppScaleWindow   time.Duration
	// AppScalePeriodOnly: the app autoscaler decides on its period only,
	// not also (scale-ups) as fresh samples arrive.
	AppScalePeriodOnly bool
}

// Defaults.
const (
	DefaultLeaseTTL       = 30 * time.Second
	DefaultSingletonGrace = 45 * time.Second
	DefaultKeepRevisions  = 5
	DefaultMaxPushes      = 8
	DBFile                = "master.db"
	PeerKeyFile           = "peer_ed25519"
	MasterKeyFile         = "master_ed25519"
)

// Master is a running control plane.
type Master struct {
	cfg     Config
	log     *slog.Logger
	db      *store.DB
	images  *image.Store
	key     ssh.Signer
	peer    ssh.Signer // nodes' key for reading each other's blobs
	peerPEM []byte
	pool    *sshx.Pool
	ctx     context.Context
	kick    chan struct{}

	mu       sync.Mutex
	agents   map[string]*agent
	deploys  sync.Mutex // one deploy, scale or rollback decided at a time
	failures map[string]string
	specs    sync.Map // "app@revision" → spec.App, decoded once
	// unplacedSince: when each app revision's replicas became
	// unplaceable (reconcile's goroutine only).
	unplacedSince map[string]time.Time
	// balanced: per app, what its spread was judged on the last time
	// nothing was to move (reconcile's goroutine only).
	balanced map[string]string
	// drainSince: when each replica being stopped was first seen so,
	// while it drains (decide_drain.go; reconcile's goroutine only).
	drainSince map[string]time.Time

	metrics      *metricstore.Store // monitoring history (metrics.go)
	metricsIndex metricsIndex       // what samples are checked against (metrics.go)

	keepCache keepCache
	feeds     feeds // rollouts watched, and their progress (watch.go)
	delivery  *delivery.Deliverer
	ops       chan struct{} // node operations (create, start, stop) at once
	deps      *agentDeps    // what agents get from the master (from Run on)
	ids       identities    // users' keys, principals and roles (users.go)
	sessions  sessions      // operators' open api sessions (apisock.go)
	dials     dialCounts    // connections open through dial, per replica (dialcount.go)
	linkKeys  linkKeys      // links' key pairs (links.go)
	alerts    alerter       // alerts and webhooks (alerts.go)
	scaler    scaler        // the cluster autoscaler (autoscaler.go)
	poolMgr   *poolManager  // makes pools' servers match their size (pools_manager.go)
	poolData  poolState     // pools' sealed tokens, providers and prices (pools.go)
	appScale  appScaler     // the app autoscaler (appscale.go)
	// secretsChanged counts writes of secrets (set, removed, envelopes
	// replaced); certs, what ingressCerts read, is good while it holds
	// still (reconcile's goroutine only).
	secretsChanged atomic.Int64
	certs          certCache
	events         eventLog      // the event log's writing end (events.go)
	cursors        cursorBook    // metrics cursors waiting to be written (metrics_pull.go)
	timings        *prom.Timings // reconcile and deploy histograms (prom.go)
}

// maxOps bounds the node operations under way at once, across nodes:
// enough to keep a failover of hundreds of replicas going at full speed.
const maxOps = 512

// Init creates the master's state in dir: the database, the image store
// and the master's SSH key, and moves nodes enrolled before the master
// existed (nodes.json) into the database. Running it again is harmless.
func Init(ctx context.Context, dir string) (ssh.PublicKey, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("create %s: %w", dir, err)
	}
	// Private, however the directory came to be.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, 0, err
	}
	key, err := sshkey.LoadOrGenerateKey(filepath.Join(dir, MasterKeyFile), "moat-master")
	if err != nil {
		return nil, 0, err
	}
	if _, err := sshkey.LoadOrGenerateKey(filepath.Join(dir, PeerKeyFile), "moat-peer"); err != nil {
		return nil, 0, err
	}
	db, err := store.Open(filepath.Join(dir, DBFile))
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	if _, err := image.Open(filepath.Join(dir, "images"), image.Options{}); err != nil {
		return nil, 0, err
	}
	nodes, err := inventory.Legacy(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range nodes {
		if err := db.PutNode(ctx, nodeRow(n)); err != nil {
			return nil, 0, fmt.Errorf("move node %s into the database: %w", n.Name, err)
		}
	}
	if len(nodes) > 0 {
		os.Rename(filepath.Join(dir, inventory.LegacyFile), filepath.Join(dir, inventory.LegacyFile+".imported"))
	}
	for _, f := range privateFiles {
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil && !os.IsNotExist(err) {
			return nil, 0, err
		}
	}
	return key.PublicKey(), len(nodes), nil
}

// Open opens the master's state, which Init made.
func Open(cfg Config) (*Master, error) {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.SingletonGrace <= 0 {
		cfg.SingletonGrace = DefaultSingletonGrace
	}
	if cfg.MaxPushes <= 0 {
		cfg.MaxPushes = DefaultMaxPushes
	}
	if cfg.KeepRevisions <= 0 {
		cfg.KeepRevisions = DefaultKeepRevisions
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = DefaultGCInterval
	}
	if cfg.GCGrace == nil {
		g := DefaultGCGrace
		cfg.GCGrace = &g
	}
	if cfg.SingletonGrace <= cfg.LeaseTTL {
		return nil, fmt.Errorf("singleton grace %s must be longer than the lease TTL %s", cfg.SingletonGrace, cfg.LeaseTTL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PrometheusListen != "" {
		if _, _, err := prom.ParseListen(cfg.PrometheusListen); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, DBFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no master state in %s: run moat init first", cfg.Dir)
	}
	if err := checkPrivate(cfg.Dir); err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(cfg.Dir, DBFile))
	if err != nil {
		return nil, err
	}
	images, err := image.Open(filepath.Join(cfg.Dir, "images"), image.Options{})
	if err != nil {
		db.Close()
		return nil, err
	}
	key, err := sshkey.LoadSigner(filepath.Join(cfg.Dir, MasterKeyFile))
	if err != nil {
		db.Close()
		return nil, err
	}
	// The peer key nodes fetch image blobs from each other with; made here
	// for masters initialised before it existed.
	peerPath := filepath.Join(cfg.Dir, PeerKeyFile)
	peer, err := sshkey.LoadOrGenerateKey(peerPath, "moat-peer")
	if err != nil {
		db.Close()
		return nil, err
	}
	peerPEM, err := os.ReadFile(peerPath)
	if err != nil {
		db.Close()
		return nil, err
	}
	m := &Master{
		cfg: cfg, log: cfg.Log, db: db, images: images, key: key, peer: peer, peerPEM: peerPEM,
		kick: make(chan struct{}, 1), agents: map[string]*agent{}, failures: map[string]string{}, unplacedSince: map[string]time.Time{}, balanced: map[string]string{}, drainSince: map[string]time.Time{},
		ops: make(chan struct{}, maxOps), timings: prom.NewTimings(),
	}
	if err := m.openMetrics(); err != nil {
		db.Close()
		return nil, err
	}
	m.poolMgr = newPoolManager(m, cfg.Pools)
	m.delivery = delivery.New(images, deliveryNodes{m}, cfg.MaxPushes, cfg.Log)
	m.pool = sshx.NewPool(sshx.Config{Signer: key, KeepaliveInterval: cfg.KeepaliveInterval, DownAfter: cfg.DownAfter, Log: cfg.Log})
	return m, nil
}

// Run connects to every node, reconciles, and serves the API until ctx
// ends. Nodes keep running their containers when it returns.
func (m *Master) Run(ctx context.Context) error {
	m.ctx = ctx
	m.deps = m.agentDeps()
	defer m.db.Close()
	defer m.metrics.Close() // before the database: its records check what is ingested
	defer m.pool.Close()
	defer m.startEvents(ctx)() // stopped first: what was recorded is written before the database closes
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := m.startAgent(n); err != nil {
			m.log.Error("node not watched", "node", n.Name, "err", err)
		}
	}
	if err := m.loadIdentities(ctx); err != nil {
		return err
	}
	if err := m.startAlerts(ctx); err != nil {
		return err
	}
	endpoints := []wire.Endpoint{{Socket: m.cfg.Socket, Handler: httpapi.Handler(m, m.log)}}
	if m.cfg.APISocket != "" {
		api, ok, err := m.apiEndpoint()
		if err != nil {
			return err
		}
		if ok {
			endpoints = append(endpoints, api)
		}
	}
	if e, ok, err := m.promEndpoint(); err != nil {
		return err
	} else if ok {
		endpoints = append(endpoints, e)
	}
	go m.reconcileLoop(ctx)
	go m.autoGC(ctx)
	poolsCtx, stopPools := context.WithCancel(ctx)
	poolsDone := make(chan struct{})
	go func() { m.poolMgr.run(poolsCtx); close(poolsDone) }()
	defer func() { stopPools(); <-poolsDone }() // before the database closes
	go m.appScaleLoop(ctx)
	err = wire.Serve(ctx, "master.pid", m.log, func() {
		m.log.Info("master serving", "socket", m.cfg.Socket, "api", m.cfg.APISocket, "nodes", len(nodes))
	}, endpoints...)
	if err != nil {
		return err
	}
	m.log.Info("master stopped; nodes keep running their containers")
	return nil
}

// kickReconcile asks for a reconciliation soon.
func (m *Master) kickReconcile() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Master) agent(name string) *agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.agents[name]
}
