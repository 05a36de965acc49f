package node_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

func TestHealthChecks(t *testing.T) {
	n := newNode(t)
	healthy := run(t, n, nodeapi.ContainerSpec{Name: "good", Cmd: []string{"serve", ":8080"},
		Health: &nodeapi.HealthCheck{HTTPPath: "/", Port: 8080, Interval: nodeapi.Duration(50 * time.Millisecond)}})
	waitContainer(t, n, healthy.ID, "healthy", func(c nodeapi.Container) bool { return c.Health == nodeapi.HealthHealthy })

	// Nothing listens on 9999: unhealthy, so the node stops it and the
	// restart policy brings it back — on-failure too, though the probe
	// exits 0 on SIGTERM: a run ended for being unhealthy failed.
	sick := run(t, n, nodeapi.ContainerSpec{Name: "sick", Cmd: []string{"serve", ":8080"}, Restart: nodeapi.RestartPolicy{Policy: "on-failure"},
		Health: &nodeapi.HealthCheck{Port: 9999, Interval: nodeapi.Duration(50 * time.Millisecond), Timeout: nodeapi.Duration(40 * time.Millisecond), Retries: 2}})
	c := waitContainer(t, n, sick.ID, "restarted after being unhealthy", func(c nodeapi.Container) bool { return c.Restarts >= 1 })
	if !strings.Contains(c.Error, "unhealthy: connect 127.0.0.1:9999") {
		t.Errorf("the unhealthy run ended with error %q; want it to say the node stopped it as unhealthy, and why", c.Error)
	}
}

func TestFencingLease(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	spec := nodeapi.ContainerSpec{Name: "single", Image: probeImage, Cmd: []string{"sleep"}, Fenced: true}
	if _, err := n.Client.CreateContainer(ctx, spec, true); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("a fenced container without a lease: %v, want a conflict", err)
	}
	if err := n.Client.Renew(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client.StartContainer(ctx, "single"); err != nil {
		t.Fatalf("start under a lease: %v", err)
	}
	free := run(t, n, nodeapi.ContainerSpec{Name: "free", Cmd: []string{"sleep"}})
	// Nobody renews: the node stops the fenced container itself, and
	// says the fence did (the master starts it again whatever its policy).
	waitContainer(t, n, "single", "stopped by the fence", exited)
	if c, _ := n.Client.Container(ctx, "single"); !c.FenceStopped {
		t.Errorf("the fence's stop is not reported as the fence's: %+v", c)
	}
	if c, _ := n.Client.Container(ctx, free.ID); c.State != nodeapi.StateRunning || c.FenceStopped {
		t.Errorf("an unfenced container was stopped too: %s", c.State)
	}
	// A daemon restart does not extend a lapsed lease.
	n.Kill9()
	n.Start()
	if _, err := n.Client.StartContainer(ctx, "single"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("start after a restart with a lapsed lease: %v, want a conflict", err)
	}
	if c, _ := n.Client.Container(ctx, "single"); !c.FenceStopped {
		t.Errorf("the fence's stop is forgotten across a daemon restart: %+v", c)
	}
	// Started again under a new lease, it is no longer the fence's.
	if err := n.Client.Renew(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if c, err := n.Client.StartContainer(ctx, "single"); err != nil || c.FenceStopped {
		t.Errorf("start under a new lease: %+v %v", c, err)
	}
}

func TestEvents(t *testing.T) {
	n := newNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan nodeapi.Event, 100)
	go n.Client.Events(ctx, func(e nodeapi.Event) { got <- e })
	// The stream is open once the daemon has a subscriber; a container
	// created after that is announced through its life.
	waitFor(t, "the subscription", 10*time.Second, func() bool {
		run(t, n, nodeapi.ContainerSpec{Cmd: []string{"exit", "0"}})
		select {
		case <-got:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	c := run(t, n, nodeapi.ContainerSpec{Name: "watched", Cmd: []string{"exit", "0"}})
	states := map[string]bool{}
	for !states[nodeapi.StateExited] {
		select {
		case e := <-got:
			if e.Container != nil && e.Container.ID == c.ID {
				states[e.Container.State] = true
			}
		case <-ctx.Done():
			t.Fatalf("events seen for %s: %v", c.ID, states)
		}
	}
	if !states[nodeapi.StateCreated] || !states[nodeapi.StateRunning] {
		t.Errorf("events for %s: %v, want created, running, exited", c.ID, states)
	}
	n.Client.RemoveContainer(ctx, c.ID, false)
	for {
		select {
		case e := <-got:
			if e.Type == "removed" && e.ID == c.ID {
				return
			}
		case <-ctx.Done():
			t.Fatal("no removed event")
		}
	}
}

// TestPullFromInbox: blobs dropped in the inbox (as the master uploads them)
// become an image; a blob whose content lies is discarded.
func TestPullFromInbox(t *testing.T) {
	n := testcluster.StartNode(t)
	ctx := context.Background()
	inbox := filepath.Join(n.Root, "inbox", "blobs")
	os.MkdirAll(inbox, 0o700)
	blobs := layoutBlobs(t, testcluster.ProbeImage(t, "probe:1"))
	var manifest string
	missing, err := n.Client.MissingBlobs(ctx, keys(blobs))
	if err != nil || len(missing) != len(blobs) {
		t.Fatalf("missing %v %v", missing, err)
	}
	for d, b := range blobs {
		if len(b) < 2000 && manifest == "" && isManifest(b) {
			manifest = d
		}
		os.WriteFile(filepath.Join(inbox, image.InboxName(digest.Digest(d))), b, 0o600)
	}
	// Corrupt one blob: the pull must refuse and discard it.
	for d, b := range blobs {
		if d != manifest && len(b) > 2000 {
			bad := append([]byte(nil), b...)
			bad[len(bad)-1] ^= 1
			os.WriteFile(filepath.Join(inbox, "sha256-"+d[len("sha256:"):]), bad, 0o600)
			_, err := n.Client.Pull(ctx, nodeapi.PullRequest{Name: "probe:pulled", Digest: manifest})
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("pull with a corrupt blob: %v", err)
			}
			if _, err := os.Stat(filepath.Join(inbox, "sha256-"+d[len("sha256:"):])); err == nil {
				t.Error("the corrupt upload was kept")
			}
			os.WriteFile(filepath.Join(inbox, "sha256-"+d[len("sha256:"):]), b, 0o600)
		}
	}
	img, err := n.Client.Pull(ctx, nodeapi.PullRequest{Name: "probe:pulled", Digest: manifest})
	if err != nil || img.Digest != manifest {
		t.Fatalf("pull: %+v %v", img, err)
	}
	if left, _ := os.ReadDir(inbox); len(left) != 0 {
		t.Errorf("the inbox keeps %d files after the pull", len(left))
	}
	c, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "from-pull", Image: "probe:pulled", Cmd: []string{"exit", "0"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	waitContainer(t, n, c.ID, "exited", exited)
}

// layoutBlobs reads the blobs of an OCI layout tar.
func layoutBlobs(t *testing.T, path string) map[string][]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := strings.CutPrefix(h.Name, "blobs/sha256/"); ok && d != "" && h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out["sha256:"+d] = b
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func isManifest(b []byte) bool {
	return len(b) > 0 && b[0] == '{' && strings.Contains(string(b), `"schemaVersion"`)
}
