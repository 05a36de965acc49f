package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func TestStop(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	t.Run("SIGTERM ends a cooperative process", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "sleeper", Cmd: []string{"sleep"}})
		waitLog(t, n, c.ID, "sleeping")
		c, err := n.Client.StopContainer(ctx, c.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != nodeapi.StateExited || c.Signal == "SIGKILL" {
			t.Fatalf("after stop: state %s signal %q, want exited without SIGKILL", c.State, c.Signal)
		}
	})
	t.Run("SIGKILL after the grace period", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "stubborn", Cmd: []string{"ignore-term"}, StopTimeout: nodeapi.Duration(200 * time.Millisecond)})
		waitLog(t, n, c.ID, "ignoring SIGTERM")
		c, err := n.Client.StopContainer(ctx, c.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != nodeapi.StateExited || c.Signal != "SIGKILL" || c.ExitCode == nil || *c.ExitCode != 137 {
			t.Fatalf("after stop: %+v, want exited by SIGKILL (137)", c)
		}
		if !c.Finished.After(c.Started) || c.Finished.Sub(c.Started) < 200*time.Millisecond {
			t.Errorf("killed %s after start, before the 200ms grace period", c.Finished.Sub(c.Started))
		}
	})
	t.Run("remove refuses a running container unless forced", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "busy", Cmd: []string{"sleep"}})
		if err := n.Client.RemoveContainer(ctx, c.ID, false); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("remove running: %v, want a conflict", err)
		}
		if err := n.Client.RemoveContainer(ctx, c.ID, true); err != nil {
			t.Fatalf("force remove: %v", err)
		}
		if _, err := n.Client.Container(ctx, c.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Fatalf("inspect removed container: %v, want not found", err)
		}
	})
	t.Run("start again after stop", func(t *testing.T) {
		c, err := n.Client.StartContainer(ctx, "sleeper")
		if err != nil || c.State != nodeapi.StateRunning || c.Pid == 0 {
			t.Fatalf("restart stopped container: %+v, %v", c, err)
		}
	})
}

func TestRestartPolicy(t *testing.T) {
	n := newNode(t)
	t.Run("on-failure stops after max retries", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "flaky", Cmd: []string{"exit", "3"}, Restart: nodeapi.RestartPolicy{Policy: "on-failure", MaxRetries: 3}})
		c = waitContainer(t, n, c.ID, "to give up", func(c nodeapi.Container) bool { return exited(c) && c.Restarts == 3 })
		if *c.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", *c.ExitCode)
		}
		// Four runs, each logged: the log survives restarts.
		lines := 0
		for _, e := range logLines(t, n, c.ID, nodeapi.LogOptions{}) {
			if e.Line == "exiting with 3" {
				lines++
			}
		}
		if lines != 4 {
			t.Errorf("%d runs logged, want 4", lines)
		}
	})
	t.Run("on-failure does not restart a success", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "fine", Cmd: []string{"exit", "0"}, Restart: nodeapi.RestartPolicy{Policy: "on-failure"}})
		c = waitContainer(t, n, c.ID, "exited", exited)
		if c.Restarts != 0 || *c.ExitCode != 0 {
			t.Errorf("restarts %d exit %d, want 0 and 0", c.Restarts, *c.ExitCode)
		}
	})
	t.Run("always restarts with growing backoff", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "looper", Cmd: []string{"exit", "0"}, Restart: nodeapi.RestartPolicy{Policy: "always"}})
		// Exits 1..4 are 100, 200, 400, 800ms apart: the gaps between
		// runs in the log grow.
		var times []time.Time
		waitFor(t, "4 runs logged", 20*time.Second, func() bool {
			times = times[:0]
			for _, e := range logLines(t, n, c.ID, nodeapi.LogOptions{}) {
				times = append(times, e.Time)
			}
			return len(times) >= 4
		})
		if g1, g3 := times[1].Sub(times[0]), times[3].Sub(times[2]); g3 <= g1 {
			t.Errorf("backoff did not grow: gap %s then %s", g1, g3)
		}
		stopped, err := n.Client.StopContainer(context.Background(), c.ID, nil)
		if err != nil || stopped.State != nodeapi.StateExited {
			t.Fatalf("stop a restarting container: %+v, %v", stopped, err)
		}
	})
	t.Run("no means no", func(t *testing.T) {
		c := run(t, n, nodeapi.ContainerSpec{Name: "once", Cmd: []string{"exit", "1"}})
		c = waitContainer(t, n, c.ID, "exited", exited)
		if c.Restarts != 0 || *c.ExitCode != 1 {
			t.Errorf("restarts %d exit %d, want 0 and 1", c.Restarts, *c.ExitCode)
		}
	})
}

func TestOOMKilled(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "hog", Cmd: []string{"oom"}, Resources: nodeapi.Resources{MemoryBytes: 16 << 20}})
	c = waitContainer(t, n, c.ID, "killed", exited)
	if !c.OOMKilled || *c.ExitCode != 137 {
		t.Fatalf("oomKilled %v exit %v signal %q, want true, 137", c.OOMKilled, *c.ExitCode, c.Signal)
	}
}
