package master_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// largestBlob is the biggest blob of an image in the master's store (its
// layer), and the image's total size.
func (e *env) largestBlob(ref string) (digest.Digest, []byte, int64) {
	e.t.Helper()
	store, err := image.Open(filepath.Join(e.m.Dir, "images"), image.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := store.Resolve(ref)
	if err != nil {
		e.t.Fatal(err)
	}
	var big image.Layer
	for _, l := range img.Layers {
		if l.Size > big.Size {
			big = l
		}
	}
	b, err := os.ReadFile(store.BlobPath(big.Digest))
	if err != nil {
		e.t.Fatal(err)
	}
	return big.Digest, b, img.Size
}

// TestImagesTravelOnce: three nodes need an image; the master uploads it
// once and the nodes fetch it from each other; an unchanged image moves
// no bytes on the next deploy.
func TestImagesTravelOnce(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	_, _, size := e.largestBlob("probe:1")
	r := e.deploy(spec("web", 3))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	s, _ := e.m.Client.Stats(ctx)
	t.Logf("image %d bytes; from the master %d, between nodes %d", size, s.PushedBytes, s.PeerBytes)
	if s.PushedBytes > size+size/2 || s.PeerBytes < size {
		t.Errorf("a %d-byte image reached 3 nodes with %d bytes from the master and %d between nodes; want about 1× and 2×", size, s.PushedBytes, s.PeerBytes)
	}
	// A new revision of the same image: nothing travels.
	r = e.deploy(spec("web", 3, "env: {COLOUR: green}"))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("redeploy: %+v", p)
	}
	if s2, _ := e.m.Client.Stats(ctx); s2 != s {
		t.Errorf("redeploying an unchanged image moved %d bytes", s2.PushedBytes-s.PushedBytes+s2.PeerBytes-s.PeerBytes)
	}
}

// TestUploadResumes: an upload cut short left half a layer in the node's
// inbox; the next push sends only the rest.
func TestUploadResumes(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	d, blob, size := e.largestBlob("probe:1")
	n, _ := e.c.Node("n1")
	inbox := nodeapi.Layout{Root: filepath.Join(n.Dir, "var-lib-moat")}.InboxBlobs()
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	half := len(blob) / 2
	if err := os.WriteFile(filepath.Join(inbox, nodeapi.InboxBlobName(string(d))+nodeapi.PartSuffix), blob[:half], 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.deploy(spec("web", 1))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	s, _ := e.m.Client.Stats(ctx)
	if want := size - int64(half); s.PushedBytes != want {
		t.Errorf("pushed %d bytes of a %d-byte image whose layer was half there; want %d", s.PushedBytes, size, want)
	}
}

// TestCorruptPartialUpload: a partial upload that is not a prefix of the
// blob (a disk fault, a tampering) fails the pull's digest check; it is
// discarded whole and the next attempt sends everything again.
func TestCorruptPartialUpload(t *testing.T) {
	e := newEnv(t, 1)
	d, blob, _ := e.largestBlob("probe:1")
	n, _ := e.c.Node("n1")
	inbox := nodeapi.Layout{Root: filepath.Join(n.Dir, "var-lib-moat")}.InboxBlobs()
	os.MkdirAll(inbox, 0o700)
	bad := append([]byte(nil), blob[:len(blob)/2]...)
	bad[10] ^= 0xff
	os.WriteFile(filepath.Join(inbox, nodeapi.InboxBlobName(string(d))+nodeapi.PartSuffix), bad, 0o600)
	r := e.deploy(spec("web", 1))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy after a corrupt partial upload: %+v", p)
	}
	if left, _ := os.ReadDir(inbox); len(left) != 0 {
		var names []string
		for _, l := range left {
			names = append(names, l.Name())
		}
		t.Errorf("the inbox keeps %s", strings.Join(names, ", "))
	}
}

// TestPeerFetchFallsBack: nodes that cannot fetch from each other (here
// the peer key was removed from their authorized_keys) still get the
// image, from the master.
func TestPeerFetchFallsBack(t *testing.T) {
	e := newEnv(t, 2)
	for _, name := range []string{"n1", "n2"} {
		n, _ := e.c.Node(name)
		keys := filepath.Join(n.Dir, "root", ".ssh", "authorized_keys")
		b, _ := os.ReadFile(keys)
		var kept []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasSuffix(line, " moat-peer") {
				kept = append(kept, line)
			}
		}
		os.WriteFile(keys, []byte(strings.Join(kept, "\n")), 0o600)
	}
	r := e.deploy(spec("web", 2))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	s, _ := e.m.Client.Stats(context.Background())
	if s.PeerBytes != 0 {
		t.Errorf("%d bytes travelled between nodes that refuse each other", s.PeerBytes)
	}
}

var deliveredLine = regexp.MustCompile(`time=(\S+) level=INFO msg="image delivered" node=(\S+) image=\S+ from=(\S+) bytes=\d+ took=(\S+)`)

// TestImageFlowsOnWhileArriving: on slow links, a node passes the image on
// while it is still receiving it: some node starts fetching from a peer
// before that peer has all of it, and every copy is whole.
func TestImageFlowsOnWhileArriving(t *testing.T) {
	e := slowEnv(t, 3)
	r := e.deploy(strings.Replace(spec("web", 3), "deadline: 20s", "deadline: 2m", 1))
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	type span struct {
		from       string
		start, end time.Time
	}
	got := map[string]span{}
	for _, m := range deliveredLine.FindAllStringSubmatch(e.m.Log(), -1) {
		end, err1 := time.Parse(time.RFC3339Nano, m[1])
		took, err2 := time.ParseDuration(m[4])
		if err1 != nil || err2 != nil {
			t.Fatalf("log line %q: %v %v", m[0], err1, err2)
		}
		got[m[2]] = span{from: m[3], start: end.Add(-took), end: end}
	}
	if len(got) != 3 {
		t.Fatalf("deliveries: %+v", got)
	}
	overlapped := false
	for node, s := range got {
		if up, ok := got[s.from]; ok && s.start.Before(up.end) {
			t.Logf("%s followed %s while %s was receiving", node, s.from, s.from)
			overlapped = true
		}
	}
	if !overlapped {
		t.Errorf("every node waited for its source to have the whole image: %+v", got)
	}
}

// TestSourceCutOffMidStream: the node another is fetching the image from
// drops off the network mid-transfer (no reset, no answer); the fetching
// node notices by its keepalives, gets the image another way, and the
// deploy completes without the lost node.
func TestSourceCutOffMidStream(t *testing.T) {
	e := slowEnv(t, 3)
	r := e.deploy(strings.Replace(spec("web", 3), "deadline: 20s", "deadline: 2m", 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var victim string
	errFound := errors.New("found")
	err := e.m.Client.Watch(ctx, "web", r.Revision, func(p masterapi.Progress) error {
		for _, tr := range p.Transfers {
			if tr.From != "master" && tr.Done > 0 && tr.Done < tr.Total {
				victim = tr.From
				return errFound
			}
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		t.Fatalf("no node fetched from another: %v", err)
	}
	if err := e.c.CutLink(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut off %s mid-stream", victim)
	if p := e.wait("web", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy after losing %s: %+v", victim, p)
	}
	n, nodes := ready(e.replicas("web"))
	if n != 3 || nodes[victim] != 0 {
		t.Errorf("%d replicas ready, on %v; want 3, none on %s", n, nodes, victim)
	}
}

// slowEnv is a cluster on links shaped to 25 Mbit/s, where the ~9 MiB
// probe image takes about three seconds a link.
func slowEnv(t *testing.T, nodes int) *env {
	e := newEnv(t, nodes)
	if err := e.c.LimitBandwidth(25e6); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("needs traffic shaping: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSourceThatLostTheImage: a node collected an image by itself after
// the master saw it arrive; the next deploy of that image still reaches
// every node (the master learns the node is receiving it again, or that
// it no longer holds it).
func TestSourceThatLostTheImage(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	r := e.deploy(spec("one", 1))
	if p := e.wait("one", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	holder := e.replicas("one")[0].Node
	if err := e.m.Client.RemoveApp(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas("one", "gone", 30*time.Second, func(reps []masterapi.Replica) bool { return len(reps) == 0 })
	// As the node's own threshold GC would, without telling the master.
	none := nodeapi.Duration(0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.c.NodeAPI(holder).GC(ctx, nodeapi.GCRequest{Grace: &none})
		if err == nil && len(res.Images) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gc on %s: %+v %v", holder, res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = e.deploy(spec("two", 2))
	if p := e.wait("two", r.Revision); p.Status != "deployed" {
		t.Fatalf("deploy after %s lost the image: %+v", holder, p)
	}
	for _, n := range e.c.Nodes {
		if _, err := e.c.NodeAPI(n.Name).Image(ctx, "probe:1"); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
}
