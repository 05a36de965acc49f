package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// startLocked starts one run of c through a new shim. c.mu is held. A
// failure to start counts as a failed run for the restart policy.
func (d *Daemon) startLocked(ctx context.Context, c *container) error {
	id := c.rec.ID
	if err := d.prepareRun(ctx, c); err != nil {
		d.recordExit(c, runtime.ExitStatus{Code: -1, Error: err.Error(), Finished: time.Now().UTC()})
		return fmt.Errorf("start %s: %w", id, err)
	}
	d.starts <- struct{}{}
	shim, err := runtime.StartShim(ctx, d.cfg.Exe, c.dir)
	<-d.starts
	if err != nil {
		d.recordExit(c, runtime.ExitStatus{Code: -1, Error: err.Error(), Finished: time.Now().UTC()})
		return fmt.Errorf("start %s: %w", id, err)
	}
	c.shim, c.runDone = shim, make(chan struct{})
	r := &c.rec
	r.State, r.Started, r.NextRestart = nodeapi.StateRunning, time.Now().UTC(), time.Time{}
	r.ShimPid, r.ShimStart, r.InitPid = shim.Pid, shim.StartTime, shim.InitPid
	d.startHealth(c, shim)
	if err := r.save(c.dir); err != nil {
		d.log.Error("container state not saved", "container", id, "err", err)
	}
	d.changed(c)
	d.log.Info("container started", "container", id, "pid", shim.InitPid, "restarts", r.Restarts)
	go d.watch(c, shim, c.runDone)
	return nil
}

// prepareRun makes sure the root filesystem is mounted (it is not after a
// reboot) and clears what the last run left.
func (d *Daemon) prepareRun(ctx context.Context, c *container) error {
	if !runtime.IsMountPoint(c.rootfs()) {
		img, err := d.images.Resolve(c.rec.ImageDigest)
		if err != nil {
			return fmt.Errorf("image %s: %w", digest.Digest(c.rec.ImageDigest), err)
		}
		if err := d.mountRootfs(ctx, c, img); err != nil {
			return err
		}
	}
	if err := runtime.ClearRun(c.dir); err != nil {
		return err
	}
	if err := d.materialise(ctx, c); err != nil {
		return err
	}
	// State from a run whose shim died with the machine. Checked on disk
	// first: running runc costs milliseconds on every start.
	if _, err := os.Stat(filepath.Join(d.cfg.RuncRoot, c.rec.ID)); err == nil {
		if err := d.runc.Delete(ctx, c.rec.ID, true); err != nil && !errors.Is(err, runtime.ErrNoContainer) {
			d.log.Warn("stale runc state", "container", c.rec.ID, "err", err)
		}
	}
	return runtime.WriteShimConfig(c.dir, runtime.ShimConfig{
		ID: c.rec.ID, Bundle: c.bundle(), Runc: d.runc,
		LogDir: filepath.Join(c.dir, "logs"), LogMaxSize: d.cfg.LogMaxSize, LogMaxFiles: d.cfg.LogMaxFiles,
		CgroupsPath: c.rec.Config.CgroupsPath,
	})
}

// watch waits for a run's shim to exit and records how the run ended.
func (d *Daemon) watch(c *container, shim *runtime.ShimProcess, done chan struct{}) {
	<-shim.Exited
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(done)
	if c.shim != shim {
		return
	}
	c.shim = nil
	c.stopHealth()
	exit, ok := runtime.ReadExit(c.dir)
	if !ok {
		exit = d.lostRun(c, "the shim exited without recording the container's exit")
	}
	if c.unhealthy != "" && exit.Error == "" {
		// A clean exit on the node's SIGTERM is still a failed run: the
		// restart policy (on-failure too) brings it back, with backoff.
		exit.Error = "stopped by the node: unhealthy: " + c.unhealthy
	}
	c.unhealthy = ""
	d.recordExit(c, exit)
}

// lostRun handles a run whose shim vanished without an exit record: the
// container may still run, without anyone capturing its output. Kill it;
// the restart policy decides what comes next.
func (d *Daemon) lostRun(c *container, why string) runtime.ExitStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.runc.Kill(ctx, c.rec.ID, "KILL")
	d.runc.Delete(ctx, c.rec.ID, true)
	return runtime.ExitStatus{Code: -1, Error: why, Finished: time.Now().UTC()}
}

// recordExit stores how a run ended and applies the restart policy.
// c.mu is held.
func (d *Daemon) recordExit(c *container, exit runtime.ExitStatus) {
	r := &c.rec
	r.Exit, r.Finished = &exit, exit.Finished
	r.ShimPid, r.ShimStart, r.InitPid = 0, 0, 0
	r.Failures = nextFailures(r.Failures, exit)
	log := d.log.With("container", r.ID, "code", exit.Code)
	if exit.Signal != "" {
		log = log.With("signal", exit.Signal)
	}
	if exit.OOMKilled {
		log = log.With("oom", true)
	}
	if exit.Error != "" {
		log = log.With("error", exit.Error)
	}
	if shouldRestart(r.Spec.Restart, exit, r.Restarts, r.StoppedByUser) {
		delay := backoff(max(r.Failures-1, 0))
		r.State, r.NextRestart = nodeapi.StateRestarting, time.Now().UTC().Add(delay)
		d.scheduleRestart(c, delay)
		log.Info("container exited; restarting", "in", delay)
	} else {
		r.State = nodeapi.StateExited
		log.Info("container exited")
	}
	if err := r.save(c.dir); err != nil {
		d.log.Error("container state not saved", "container", r.ID, "err", err)
	}
	d.changed(c)
}

func (d *Daemon) scheduleRestart(c *container, delay time.Duration) {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(delay, func() {
		if d.ctx.Err() != nil {
			return // the daemon is stopping; the next one reschedules
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.rec.State != nodeapi.StateRestarting || c.rec.StoppedByUser {
			return
		}
		c.timer = nil
		c.rec.Restarts++
		if err := d.startLocked(d.ctx, c); err != nil {
			d.log.Warn("restart failed", "container", c.rec.ID, "err", err)
		}
	})
}

// adoptAll loads every container's record and takes over running ones
// from their shims. Containers that ended while the daemon was away get
// their exit recorded and their restart policy applied.
func (d *Daemon) adoptAll() error {
	dir := d.cfg.layout().Containers()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("adopt containers: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			d.adopt(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

func (d *Daemon) adopt(dir string) {
	rec, err := loadRecord(dir)
	if err != nil {
		// A create interrupted before its first save: nothing ran.
		d.log.Warn("discarding half-created container", "dir", dir, "err", err)
		runtime.UnmountRootfs(filepath.Join(dir, "bundle", "rootfs"))
		unmountSecrets(filepath.Join(dir, secretsDirName))
		os.RemoveAll(dir)
		return
	}
	c := &container{dir: dir, rec: rec}
	d.mu.Lock()
	d.containers[rec.ID] = c
	d.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch rec.State {
	case nodeapi.StateRunning:
		shim, err := runtime.AdoptShim(rec.ShimPid, rec.ShimStart, rec.InitPid)
		if err == nil {
			c.shim, c.runDone = shim, make(chan struct{})
			d.startHealth(c, shim)
			go d.watch(c, shim, c.runDone)
			d.log.Info("container adopted", "container", rec.ID, "pid", rec.InitPid)
			return
		}
		exit, ok := runtime.ReadExit(dir)
		if !ok {
			exit = d.lostRun(c, "the shim was gone when the daemon restarted (node reboot?)")
		}
		d.log.Info("container ended while the daemon was away", "container", rec.ID)
		d.recordExit(c, exit)
	case nodeapi.StateRestarting:
		d.scheduleRestart(c, max(time.Until(rec.NextRestart), 0))
	}
}
