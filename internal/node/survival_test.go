package node_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/logs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestSurvivesDaemonKill: kill -9 of the daemon leaves containers running
// and their output captured; a container that ends while the daemon is
// away has its exit recorded; the next daemon adopts both.
func TestSurvivesDaemonKill(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	ticker := run(t, n, nodeapi.ContainerSpec{Name: "ticker", Cmd: []string{"tick", "10ms"}})
	doomed := run(t, n, nodeapi.ContainerSpec{Name: "doomed", Cmd: []string{"sleep"}, Restart: nodeapi.RestartPolicy{Policy: "no"}})
	waitLog(t, n, ticker.ID, "tick 1")
	waitLog(t, n, doomed.ID, "sleeping")

	n.Kill9()
	// With the daemon gone, the container keeps writing its log...
	before := lastTick(t, n, ticker.ID)
	waitFor(t, "ticks logged with the daemon down", 10*time.Second, func() bool {
		return lastTick(t, n, ticker.ID) > before+10
	})
	// ...and one container ends: runc kills it behind everyone's back.
	runc := exec.Command("runc", "--root", filepath.Join(n.Root, "runc"), "kill", doomed.ID, "KILL")
	if out, err := runc.CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v: %s", err, out)
	}
	waitFor(t, "the shim to record the exit", 10*time.Second, func() bool {
		return fileExists(filepath.Join(n.Root, "containers", doomed.ID, "exit.json"))
	})

	n.Start()
	got, err := n.Client.Container(ctx, ticker.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != nodeapi.StateRunning || got.Pid != ticker.Pid || got.Restarts != 0 {
		t.Errorf("ticker after daemon restart: state %s pid %d restarts %d; want running, pid %d, 0 restarts", got.State, got.Pid, got.Restarts, ticker.Pid)
	}
	d := waitContainer(t, n, doomed.ID, "exited", exited)
	if d.ExitCode == nil || *d.ExitCode != 137 || d.Signal != "SIGKILL" {
		t.Errorf("doomed: exit %v signal %q, want 137 SIGKILL recorded while the daemon was down", d.ExitCode, d.Signal)
	}
	// The log of the ticker has no gap: every tick is there.
	ticks := 0
	for _, e := range logLines(t, n, ticker.ID, nodeapi.LogOptions{}) {
		if e.Line != fmt.Sprintf("tick %d", ticks) {
			t.Fatalf("log line %q, want tick %d: output was lost", e.Line, ticks)
		}
		ticks++
	}
	// And the adopted container is still fully managed.
	if _, err := n.Client.StopContainer(ctx, ticker.ID, nil); err != nil {
		t.Fatalf("stop adopted container: %v", err)
	}
}

// lastTick reads the log files directly: the daemon may be down.
func lastTick(t *testing.T, n *testcluster.Node, id string) int {
	t.Helper()
	last := -1
	dir := filepath.Join(n.Root, "containers", id, "logs")
	err := logs.Read(context.Background(), dir, logs.ReadOptions{Tail: 1}, func(e logs.Entry) error {
		fmt.Sscanf(strings.TrimPrefix(e.Line, "tick "), "%d", &last)
		return nil
	})
	if err != nil {
		t.Fatalf("read logs of %s: %v", id, err)
	}
	return last
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
