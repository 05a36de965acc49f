package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/runtime"
)

// container is one container in memory. mu serialises operations on it;
// the exit of its current run is signalled by closing runDone.
type container struct {
	mu      sync.Mutex
	dir     string
	rec     record
	shim    *runtime.ShimProcess
	runDone chan struct{} // closed when the current run has ended and been recorded
	timer   *time.Timer   // pending restart
	changed chan struct{} // closed and replaced on every state change

	healthCancel context.CancelFunc // ends the current run's health checks
	// unhealthy says why the node is stopping the current run: its health
	// check failed. The run then counts as failed whatever its exit code.
	unhealthy string
}

// changedChan returns a channel closed at the next state change. c.mu held.
func (c *container) changedChan() <-chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// notify wakes everyone waiting for a state change. c.mu held.
func (c *container) notify() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

func (c *container) bundle() string { return filepath.Join(c.dir, "bundle") }
func (c *container) rootfs() string { return filepath.Join(c.dir, "bundle", "rootfs") }

// Default stop grace period, as docker's.
const defaultStopTimeout = 10 * time.Second

func (d *Daemon) get(id string) (*container, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, errs.ErrNotFound)
	}
	return c, nil
}

// Create makes a container from a validated spec: resolves its image,
// mounts its root filesystem and writes its OCI bundle. It does not start it.
func (d *Daemon) Create(ctx context.Context, spec nodeapi.ContainerSpec) (nodeapi.Container, error) {
	id := spec.Name
	if id == "" {
		id = "c" + randomHex(6)
	}
	// Image GC waits until the container records its image.
	d.gcMu.RLock()
	defer d.gcMu.RUnlock()
	img, err := d.images.Resolve(spec.Image)
	if err != nil {
		return nodeapi.Container{}, err
	}
	if a := img.Config.Architecture; a != "" && a != goruntime.GOARCH {
		return nodeapi.Container{}, errs.Invalid("image", "%s is a linux/%s image; this node is linux/%s", spec.Image, a, goruntime.GOARCH)
	}
	if err := d.checkSigned(img.Digest, nil); err != nil {
		return nodeapi.Container{}, fmt.Errorf("create container %s: %w", id, err)
	}
	pr, err := d.checkPrivileges(ctx, spec, img)
	if err != nil {
		return nodeapi.Container{}, fmt.Errorf("create container %s: %w", id, err)
	}
	if err := d.checkMounts(spec.Mounts); err != nil {
		return nodeapi.Container{}, err
	}
	if err := d.checkSecrets(id, &spec, img); err != nil {
		return nodeapi.Container{}, fmt.Errorf("create container %s: %w", id, err)
	}
	c := &container{dir: d.cfg.layout().Container(id)}
	d.mu.Lock()
	if _, taken := d.containers[id]; taken {
		d.mu.Unlock()
		return nodeapi.Container{}, fmt.Errorf("container %q already exists: %w", id, errs.ErrConflict)
	}
	d.containers[id] = c // reserve the name; removed again on failure
	d.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := d.prepare(ctx, c, id, spec, img, pr)
	if err != nil {
		d.discard(c, id)
		return nodeapi.Container{}, fmt.Errorf("create container %s: %w", id, err)
	}
	c.rec = rec
	d.changed(c)
	d.log.Info("container created", "container", id, "image", spec.Image, "digest", img.Digest)
	return rec.wire(), nil
}

func (d *Daemon) prepare(ctx context.Context, c *container, id string, spec nodeapi.ContainerSpec, img image.Image, pr privileges) (record, error) {
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		return record{}, err
	}
	cfg := runtime.Resolve(id, runtimeRequest(spec), img.Config.Config, d.cfg.CgroupParent)
	cfg.NoFile = noFileLimit()
	cfg.StartMilliCPU = startupMilliCPU
	for i := range cfg.Mounts {
		if cfg.Mounts[i].Type == "bind" {
			if err := os.MkdirAll(cfg.Mounts[i].Source, 0o755); err != nil {
				return record{}, err
			}
		}
	}
	if err := d.mountRootfs(ctx, c, img); err != nil {
		return record{}, err
	}
	user := runtime.UserSpec(runtimeRequest(spec), img.Config.Config)
	if pr.drop[privilege.Root] && spec.User == "" {
		user = runtime.NobodyUser // the image's own user may be root: do without
	}
	imageRoot, err := d.resolveUser(c, &cfg, user, img.Config.Config.User)
	if err != nil {
		return record{}, err
	}
	if err := d.checkUser(pr, spec.Image, cfg.UID, imageRoot); err != nil {
		return record{}, err
	}
	etc, err := writeEtc(c.dir, orID(spec.Hostname, id), cfg.HostNetwork)
	if err != nil {
		return record{}, err
	}
	cfg.Mounts = append(etc, cfg.Mounts...)
	if len(spec.Secrets) > 0 {
		cfg.Mounts = append(cfg.Mounts, secretMount(c))
	}
	if err := writeBundle(c.bundle(), cfg); err != nil {
		return record{}, err
	}
	rec := record{ID: id, Spec: spec, ImageDigest: string(img.Digest), Config: cfg, State: nodeapi.StateCreated, Created: time.Now().UTC()}
	return rec, rec.save(c.dir)
}

func (d *Daemon) mountRootfs(ctx context.Context, c *container, img image.Image) error {
	layers, err := d.images.LayerPaths(ctx, img)
	if err != nil {
		return err
	}
	return runtime.MountRootfs(layers, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"), c.rootfs())
}

// resolveUser reads the image's passwd and group files through an os.Root,
// so an image whose /etc/passwd is a symlink to the host's reads nothing.
// It reports whether the image's own user (its signed config's) is root.
func (d *Daemon) resolveUser(c *container, cfg *runtime.Config, spec, imageUser string) (imageRoot bool, err error) {
	var passwd, group []byte
	if root, err := os.OpenRoot(c.rootfs()); err == nil {
		passwd, _ = root.ReadFile("etc/passwd")
		group, _ = root.ReadFile("etc/group")
		root.Close()
	}
	uid, gid, err := runtime.ResolveUser(spec, passwd, group)
	if err != nil {
		return false, err
	}
	cfg.UID, cfg.GID = uid, gid
	if imageUser != "" {
		own, _, err := runtime.ResolveUser(imageUser, passwd, group)
		imageRoot = err == nil && own == 0
	}
	return imageRoot, nil
}

// checkMounts refuses bind mounts from outside the directories the node
// allows: the API must not be a way to read the host's secrets.
func (d *Daemon) checkMounts(ms []nodeapi.Mount) error {
	for i, m := range ms {
		if m.Type == "tmpfs" {
			continue
		}
		ok := slices.ContainsFunc(d.cfg.AllowBind, func(dir string) bool {
			return m.Source == dir || strings.HasPrefix(m.Source, dir+"/")
		})
		if !ok {
			return errs.Invalid(fmt.Sprintf("mounts[%d].source", i), "%q is outside the directories this node allows bind mounts from (%s)", m.Source, strings.Join(d.cfg.AllowBind, ", "))
		}
		if real, err := filepath.EvalSymlinks(m.Source); err == nil && real != m.Source {
			return errs.Invalid(fmt.Sprintf("mounts[%d].source", i), "%q goes through a symlink", m.Source)
		}
	}
	return nil
}

// discard undoes a failed create.
func (d *Daemon) discard(c *container, id string) {
	runtime.UnmountRootfs(c.rootfs())
	unmountSecrets(c.secretsDir())
	os.RemoveAll(c.dir)
	d.mu.Lock()
	delete(d.containers, id)
	d.mu.Unlock()
}

// Start starts a created or exited container.
func (d *Daemon) Start(ctx context.Context, id string) (nodeapi.Container, error) {
	c, err := d.get(id)
	if err != nil {
		return nodeapi.Container{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State == nodeapi.StateRunning {
		return c.rec.wire(), fmt.Errorf("container %q is already running: %w", id, errs.ErrConflict)
	}
	if c.rec.Spec.Fenced && !d.lease.valid(time.Now()) {
		return c.rec.wire(), fmt.Errorf("container %q is fenced and the node holds no master lease: %w", id, errs.ErrConflict)
	}
	c.rec.StoppedByUser, c.rec.FenceStopped = false, false
	c.rec.Failures = 0
	err = d.startLocked(ctx, c)
	return c.rec.wire(), err
}

// Stop sends SIGTERM, waits for the grace period, then SIGKILL. A stopped
// container is not restarted by its policy.
func (d *Daemon) Stop(ctx context.Context, id string, timeout *time.Duration) (nodeapi.Container, error) {
	return d.stop(ctx, id, timeout, false)
}

// stop is Stop; fence says the fence asks, which the container's report
// then says.
func (d *Daemon) stop(ctx context.Context, id string, timeout *time.Duration, fence bool) (nodeapi.Container, error) {
	c, err := d.get(id)
	if err != nil {
		return nodeapi.Container{}, err
	}
	c.mu.Lock()
	c.rec.StoppedByUser, c.rec.FenceStopped = true, fence
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.rec.State == nodeapi.StateRestarting {
		c.rec.State, c.rec.NextRestart = nodeapi.StateExited, time.Time{}
	}
	c.rec.save(c.dir)
	d.changed(c)
	running, done := c.rec.State == nodeapi.StateRunning, c.runDone
	grace := time.Duration(c.rec.Spec.StopTimeout)
	c.mu.Unlock()
	if timeout != nil {
		grace = *timeout
	} else if grace == 0 {
		grace = defaultStopTimeout
	}
	if running {
		if err := d.kill(ctx, id, done, grace); err != nil {
			return nodeapi.Container{}, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.wire(), nil
}

func (d *Daemon) kill(ctx context.Context, id string, done <-chan struct{}, grace time.Duration) error {
	if grace > 0 {
		if err := d.signal(ctx, id, "TERM"); err != nil {
			return err
		}
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			d.log.Info("grace period over; killing", "container", id, "grace", grace)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := d.signal(ctx, id, "KILL"); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends a signal to the container's init. A container that has
// already exited (its shim is recording it) is not an error.
func (d *Daemon) signal(ctx context.Context, id, sig string) error {
	err := d.runc.Kill(ctx, id, sig)
	if err == nil || errors.Is(err, runtime.ErrNoContainer) || errors.Is(err, runtime.ErrNotRunning) {
		return nil
	}
	return fmt.Errorf("stop %s: %w", id, err)
}

// Remove deletes a container and its files (logs included). A running
// container is refused unless force, which kills it first.
func (d *Daemon) Remove(ctx context.Context, id string, force bool) error {
	c, err := d.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	state := c.rec.State
	c.mu.Unlock()
	if state == nodeapi.StateRunning || state == nodeapi.StateRestarting {
		if !force {
			return fmt.Errorf("container %q is %s; stop it first or force: %w", id, state, errs.ErrConflict)
		}
		zero := time.Duration(0)
		if _, err := d.Stop(ctx, id, &zero); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State == nodeapi.StateRunning {
		return fmt.Errorf("container %q started again while being removed: %w", id, errs.ErrConflict)
	}
	if err := runtime.UnmountRootfs(c.rootfs()); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := unmountSecrets(c.secretsDir()); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	d.mu.Lock()
	delete(d.containers, id)
	d.mu.Unlock()
	d.events.publish(nodeapi.Event{Type: "removed", ID: id})
	d.log.Info("container removed", "container", id)
	return nil
}

// List returns all containers, sorted by ID.
func (d *Daemon) List() []nodeapi.Container {
	d.mu.Lock()
	cs := make([]*container, 0, len(d.containers))
	for _, c := range d.containers {
		cs = append(cs, c)
	}
	d.mu.Unlock()
	out := make([]nodeapi.Container, 0, len(cs))
	for _, c := range cs {
		c.mu.Lock()
		if c.rec.ID != "" { // skip containers still being created
			out = append(out, c.rec.wire())
		}
		c.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b nodeapi.Container) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Inspect returns one container.
func (d *Daemon) Inspect(id string) (nodeapi.Container, error) {
	c, err := d.get(id)
	if err != nil {
		return nodeapi.Container{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.ID == "" {
		return nodeapi.Container{}, fmt.Errorf("container %q is being created: %w", id, errs.ErrConflict)
	}
	return c.rec.wire(), nil
}

func orID(hostname, id string) string {
	if hostname != "" {
		return hostname
	}
	return id
}

// noFileLimit is the open-files limit containers get: 65536, or the
// daemon's own hard limit if lower (raising it can be refused, as in some
// VM sandboxes).
func noFileLimit() uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return min(65536, rl.Max)
}
