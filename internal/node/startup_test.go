package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestStartupCPUAllowance: a container asking for 1% of a core starts
// with a whole core, and gets what it asked for once its health check
// passes; one without a check keeps the allowance only for a while.
func TestStartupCPUAllowance(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "small", Cmd: []string{"serve", ":8080"}, Ports: []nodeapi.Port{{Port: 8080}},
		Resources: nodeapi.Resources{MilliCPU: 10},
		Health:    &nodeapi.HealthCheck{Port: 8080, Interval: nodeapi.Duration(100 * time.Millisecond)}})
	quota := func() string { return cpuQuota(t, n.CgroupParent, c.ID) }
	waitFor(t, "a healthy container limited to what it asked", 20*time.Second, func() bool {
		x := waitContainer(t, n, c.ID, "running", func(c nodeapi.Container) bool { return c.State == nodeapi.StateRunning })
		return x.Health == nodeapi.HealthHealthy && strings.HasPrefix(quota(), "1000") && !strings.HasPrefix(quota(), "10000")
	})
}

// cpuQuota reads a container's CFS quota from the host's cgroup files (v1
// or v2).
func cpuQuota(t *testing.T, parent, id string) string {
	t.Helper()
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/cpu,cpuacct", parent, id, "cpu.cfs_quota_us"),
		filepath.Join("/sys/fs/cgroup/cpu", parent, id, "cpu.cfs_quota_us"),
		filepath.Join("/sys/fs/cgroup", parent, id, "cpu.max"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no CPU quota file for %s/%s", parent, id)
	return ""
}
