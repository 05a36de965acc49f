package sample_test

import (
	"context"
	"math"
	"os"
	"path"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/metrics/sample"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestRealContainer samples the real cgroup of a real runc container, of
// whichever version this machine has (v1 here, hybrid), and the machine
// itself.
func TestRealContainer(t *testing.T) {
	n := testcluster.StartNode(t)
	f, err := os.Open(testcluster.ProbeImage(t, "probe:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if _, err := n.Client.ImportImage(ctx, f, ""); err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 20
	c, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "burner", Image: "probe:1", Cmd: []string{"burn", "8"},
		Resources: nodeapi.Resources{MemoryBytes: limit, Pids: 64}}, true)
	if err != nil {
		t.Fatal(err)
	}
	s := sample.New(sample.Options{V2: runtime.CgroupMode() == "v2", Disk: n.Root})
	target := []sample.Target{{ID: c.ID, CgroupsPath: path.Join("/", n.CgroupParent, c.ID), Pid: c.Pid}}

	first := s.Containers(time.Now(), target)[0]
	if !math.IsNaN(first.CPU) || !math.IsNaN(first.NetRx) {
		t.Errorf("first sample has rates %+v, want NaN", first)
	}
	node := s.Node(time.Now())
	if !math.IsNaN(node.CPU) || !(node.MemTotal > 0) || !(node.MemUsed > 0) || !(node.DiskTotal > 0) || !(node.Load1 >= 0) {
		t.Errorf("first node sample %+v", node)
	}
	// The burner touches 8 MiB, then keeps a core busy: poll until a
	// sample shows both.
	var got sample.Container
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(200 * time.Millisecond) // the interval between two samples, not a wait for anything
		got = s.Containers(time.Now(), target)[0]
		if got.CPU > 0.3 && got.Mem >= 8<<20 || time.Now().After(deadline) {
			break
		}
	}
	if !(got.CPU > 0.3) || !(got.Mem >= 8<<20) || got.Mem > limit {
		t.Errorf("burning container: %.2f cores, %.0f bytes; want over 0.3 and 8 MiB to 64 MiB", got.CPU, got.Mem)
	}
	if got.MemLimit != limit || got.OOMKills != 0 || got.Pids < 1 || got.NetRx != 0 || got.NetTx != 0 {
		t.Errorf("burning container: %+v; want limit %d, no OOM kills, pids ≥ 1, no traffic", got, limit)
	}
	node = s.Node(time.Now())
	if !(node.CPU >= 0.3) || !(node.NetRx >= 0) || !(node.DiskRead >= 0) {
		t.Errorf("node sample %+v, want over 0.3 cores (the burner) and known rates", node)
	}
}
