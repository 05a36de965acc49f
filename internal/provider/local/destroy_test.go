package local_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestDestroyKillsWhatIsInANodesCgroups: a process in a node's cgroups
// but neither in its network namespace nor in runc's state directory (a
// container's `runc init` the node daemon had just started when it was
// killed) is killed, and Destroy removes the cgroups and succeeds, where
// it used to fail with "device or resource busy" and leave the process.
func TestDestroyKillsWhatIsInANodesCgroups(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	parent := "moat-" + c.Name + "-" + c.Nodes[0].Name
	hierarchy := "/sys/fs/cgroup/pids" // v1 (hybrid)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		hierarchy = "/sys/fs/cgroup" // v2
	}
	cg := filepath.Join(hierarchy, parent, "starting")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	t.Cleanup(func() {
		sleep.Process.Kill()
		<-exited
		os.Remove(cg)
		os.Remove(filepath.Join(hierarchy, parent))
	})
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := c.Cluster.Destroy(); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("the process in %s still runs after destroy", cg)
	}
	if st, ok := sleep.ProcessState.Sys().(syscall.WaitStatus); !ok || st.Signal() != syscall.SIGKILL {
		t.Errorf("the process ended with %v, want killed", sleep.ProcessState)
	}
	if _, err := os.Stat(filepath.Join(hierarchy, parent)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s is left: %v", parent, err)
	}
}
