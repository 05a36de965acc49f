package master_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// importSigned builds a probe image that differs by an env value, puts it
// into the master's store and signs it.
func (e *env) importSigned(name string, v int) string {
	e.t.Helper()
	f, err := os.Open(testcluster.ProbeImage(e.t, name, "--env", fmt.Sprintf("V=%d", v)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	imgs, err := e.m.Client.ImportImage(context.Background(), f, "")
	if err != nil {
		e.t.Fatal(err)
	}
	testcluster.SignImage(e.t, e.m.Client, name)
	return imgs[0].Digest
}

// TestGCKeepsTheRollbackWindow: seven revisions, each a new image; GC
// removes the two outside the window of five, on the master and on the
// nodes, and a rollback to the oldest kept revision uploads nothing.
func TestGCKeepsTheRollbackWindow(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	digests := map[int]string{}
	for v := 1; v <= 7; v++ {
		name := fmt.Sprintf("probe:v%d", v)
		digests[v] = e.importSigned(name, v)
		r := e.deploy(strings.Replace(spec("web", 2), "probe:1", name, 1))
		if p := e.wait("web", r.Revision); p.Status != "deployed" {
			t.Fatalf("revision %d: %+v", v, p)
		}
	}
	imgs, _ := e.m.Client.Images(ctx)
	for _, img := range imgs {
		if img.Digest == digests[7] && !strings.Contains(strings.Join(img.UsedBy, ","), "web@7 (current)") {
			t.Errorf("image ls: the current image is used by %v", img.UsedBy)
		}
	}
	// Disk use per node (moat node ls) follows the images that arrived.
	imageBytes := e.waitImageBytes("after seven deploys", func(b int64) bool { return b > 0 })
	noGrace := nodeapi.Duration(0)
	dry, err := e.m.Client.GC(ctx, masterapi.GCRequest{DryRun: true, Grace: &noGrace})
	if err != nil || len(dry) != 3 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if after, _ := e.m.Client.Images(ctx); len(after) != len(imgs) {
		t.Fatalf("a dry run removed images: %d → %d", len(imgs), len(after))
	}
	reports, err := e.m.Client.GC(ctx, masterapi.GCRequest{Grace: &noGrace})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		// probe:1 (never deployed) and v1, v2 on the master; v1, v2 on nodes.
		want := map[bool]int{true: 3, false: 2}[r.Where == "master"]
		if r.Error != "" || len(r.Images) != want || r.Bytes == 0 {
			t.Errorf("gc on %s: %+v, want %d images removed", r.Where, r, want)
		}
	}
	left := map[string]bool{}
	imgs, _ = e.m.Client.Images(ctx)
	for _, img := range imgs {
		left[img.Digest] = true
	}
	for v := 1; v <= 7; v++ {
		if left[digests[v]] != (v >= 3) {
			t.Errorf("after gc, v%d present: %v", v, left[digests[v]])
		}
	}
	for _, n := range e.c.Nodes {
		nodeImgs, err := e.c.NodeAPI(n.Name).Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range nodeImgs {
			if img.Digest == digests[1] || img.Digest == digests[2] {
				t.Errorf("node %s kept %s", n.Name, img.Digest)
			}
		}
	}

	collected := e.waitImageBytes("after gc", func(b int64) bool { return b > 0 })
	for name, b := range imageBytes {
		if collected[name] >= b {
			t.Errorf("node %s: image disk use %d before gc, %d after", name, b, collected[name])
		}
	}

	before, _ := e.m.Client.Stats(ctx)
	r, err := e.m.Client.Rollback(ctx, "web", 3)
	if err != nil {
		t.Fatal(err)
	}
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("rollback to 3: %+v", p)
	}
	after, _ := e.m.Client.Stats(ctx)
	if after.PushedBytes != before.PushedBytes || after.PeerBytes != before.PeerBytes {
		t.Errorf("the rollback to a kept revision moved %d bytes", after.PushedBytes-before.PushedBytes+after.PeerBytes-before.PeerBytes)
	}
	if _, err := e.m.Client.Rollback(ctx, "web", 2); !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "rollback window") {
		t.Errorf("rollback to a collected revision: %v", err)
	}
	if err := e.m.Client.RemoveImage(ctx, "probe:v7"); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "web@7") {
		t.Errorf("removing an image in the window: %v", err)
	}
}

// waitImageBytes polls until the master's node list shows each node's
// image disk use as the node itself reports it, and ok holds for it.
func (e *env) waitImageBytes(what string, ok func(int64) bool) map[string]int64 {
	e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nodes, err := e.m.Client.Nodes(ctx)
		got, all := map[string]int64{}, err == nil
		for _, n := range nodes {
			got[n.Name] = n.Info.ImageBytes
			info, ierr := e.c.NodeAPI(n.Name).Info(ctx)
			all = all && ierr == nil && info.ImageBytes == n.Info.ImageBytes && ok(n.Info.ImageBytes)
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("node image disk use %s: the master shows %v (%v)", what, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGCByThreshold: with disks past the threshold, the master and the
// nodes collect by themselves what is outside the rollback window (here
// two revisions), and nothing inside it.
func TestGCByThreshold(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	gc := "gc-threshold=1\ngc-interval=200ms\ngc-grace=3s\n"
	for _, n := range c.Nodes {
		f, err := os.OpenFile(filepath.Join(n.Dir, "etc-moat", "node.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(gc)
		f.Close()
	}
	m := c.StartMaster("--keep-revisions", "2", "--gc-threshold", "1", "--gc-interval", "200ms", "--gc-grace", "3s")
	c.Enrol(m, "n1", "n2")
	e := &env{t: t, c: c, m: m}
	digests := map[int]string{}
	for v := 1; v <= 4; v++ {
		digests[v] = e.importSigned(fmt.Sprintf("probe:v%d", v), v)
		r := e.deploy(strings.Replace(spec("web", 2), "probe:1", fmt.Sprintf("probe:v%d", v), 1))
		if p := e.wait("web", r.Revision); p.Status != "deployed" {
			t.Fatalf("revision %d: %+v", v, p)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		where := map[string]map[string]bool{"master": {}}
		imgs, err := m.Client.Images(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs {
			where["master"][img.Digest] = true
		}
		for _, n := range c.Nodes {
			where[n.Name] = map[string]bool{}
			nodeImgs, err := c.NodeAPI(n.Name).Images(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range nodeImgs {
				where[n.Name][img.Digest] = true
			}
		}
		done := true
		for place, has := range where {
			for v := 1; v <= 4; v++ {
				if v >= 3 && !has[digests[v]] {
					t.Fatalf("%s collected v%d, inside the rollback window", place, v)
				}
				done = done && has[digests[v]] == (v >= 3)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not collected by threshold within 30s: %v", where)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n, _ := ready(e.replicas("web")); n != 2 {
		t.Errorf("after gc, %d replicas ready", n)
	}
}
