package node

import (
	"context"
	"time"

	"github.com/moatcloud/moat/internal/health"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// Health check defaults, as the app spec's.
const (
	defaultHealthInterval = 2 * time.Second
	defaultHealthTimeout  = time.Second
	defaultHealthRetries  = 3
)

// startHealth starts checking a run of c that has a health check. c.mu is
// held. The checker ends with the run.
func (d *Daemon) startHealth(c *container, shim *runtime.ShimProcess) {
	h := c.rec.Spec.Health
	if h == nil {
		c.rec.Health, c.rec.HealthOutput = "", ""
		// Without a check, the start-up allowance ends after a while.
		time.AfterFunc(startupWindow, func() { d.endStartup(c, shim) })
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	c.healthCancel = cancel
	c.rec.Health, c.rec.HealthOutput = nodeapi.HealthStarting, ""
	check := health.Check{
		HTTPPath: h.HTTPPath, Port: h.Port,
		Interval:    orDuration(h.Interval, defaultHealthInterval),
		Timeout:     orDuration(h.Timeout, defaultHealthTimeout),
		StartPeriod: time.Duration(h.StartPeriod),
		Retries:     h.Retries,
		// Until the first success, check every 50 ms (or the interval if
		// shorter): the replica counts as soon as it listens.
		StartInterval: 50 * time.Millisecond,
	}
	if check.Retries == 0 {
		check.Retries = defaultHealthRetries
	}
	go func() {
		err := health.Run(ctx, shim.InitPid, check, func(r health.Result) { d.recordHealth(c, shim, r) })
		if err != nil && ctx.Err() == nil {
			d.log.Debug("health checks ended", "container", c.rec.ID, "err", err)
		}
	}()
}

// recordHealth stores a change of health. An unhealthy container is
// stopped (SIGTERM, grace, SIGKILL): its restart policy brings it back.
func (d *Daemon) recordHealth(c *container, shim *runtime.ShimProcess, r health.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shim != shim {
		return // a result for a run that has ended
	}
	c.rec.Health, c.rec.HealthOutput = string(r.Status), r.Output
	d.changed(c)
	if r.Status == health.Healthy {
		go d.endStartup(c, shim)
	}
	if r.Status != health.Unhealthy {
		return
	}
	d.log.Warn("container unhealthy; stopping it", "container", c.rec.ID, "output", r.Output)
	c.unhealthy = r.Output
	grace := orDuration(c.rec.Spec.StopTimeout, defaultStopTimeout)
	go d.kill(d.ctx, c.rec.ID, c.runDone, grace)
}

// stopHealth ends the checks of the current run. c.mu is held.
func (c *container) stopHealth() {
	if c.healthCancel != nil {
		c.healthCancel()
		c.healthCancel = nil
	}
	c.rec.Health, c.rec.HealthOutput = "", ""
}

func orDuration(d nodeapi.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// A container starts with a CPU limit of at least one core, whatever it
// asked for: a program limited to 1% of a core spends seconds throttled
// before it can answer its health check, and a failover of many replicas
// waits for the slowest. The limit it asked for applies from its first
// healthy check on, or after startupWindow without a check. Its CPU weight
// (shares) is what it asked for throughout, so starters compete fairly.
const (
	startupMilliCPU = 1000
	startupWindow   = 10 * time.Second
)

// endStartup lowers a run's CPU limit to what the container asked for.
func (d *Daemon) endStartup(c *container, shim *runtime.ShimProcess) {
	c.mu.Lock()
	current, cfg, id := c.shim == shim && c.rec.State == nodeapi.StateRunning, c.rec.Config, c.rec.ID
	c.mu.Unlock()
	if !current || cfg.StartMilliCPU <= cfg.LimitMilliCPU() {
		return
	}
	ok, err := runtime.SetCPULimit(cfg.CgroupsPath, cfg.LimitMilliCPU())
	if err == nil && !ok {
		err = d.runc.UpdateCPU(d.ctx, id, cfg.LimitMilliCPU()) // a cgroup layout moat does not know
	}
	if err != nil {
		d.log.Warn("CPU limit not lowered after start-up", "container", id, "err", err)
	}
}
