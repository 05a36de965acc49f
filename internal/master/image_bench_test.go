package master_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// importBig imports and signs a layered image: base (with the probe) and
// a small top layer.
func importBig(b *testing.B, e *env, name string, base, top []byte) {
	f, err := os.Open(testcluster.LayeredImage(b, name, map[string][]byte{"data/base": base}, map[string][]byte{"data/top": top}))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := e.m.Client.ImportImage(context.Background(), f, ""); err != nil {
		b.Fatal(err)
	}
	testcluster.SignImage(b, e.m.Client, name)
}

func bigSpec(name, img string, replicas int, extra ...string) string {
	return strings.Replace(strings.Replace(spec(name, replicas, extra...), "probe:1", img, 1), "memory: 32Mi", "memory: 64Mi", 1)
}

// deployTimed deploys and returns how long until the revision is deployed.
func deployTimed(b *testing.B, e *env, yaml string) time.Duration {
	t0 := time.Now()
	r, err := e.m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: yaml})
	if err != nil {
		b.Fatal(err)
	}
	waitDeployed(b, e, r.App, r.Revision)
	return time.Since(t0)
}

var delivered = regexp.MustCompile(`msg="image delivered" node=(\S+) image=(\S+) from=master bytes=(\d+) took=(\S+)`)

// uploadTook finds how long the master's upload of an image to a node took.
func uploadTook(b *testing.B, e *env, image string) (time.Duration, int64) {
	for _, m := range delivered.FindAllStringSubmatch(e.m.Log(), -1) {
		if strings.HasPrefix(image, "sha256:"+m[2]) {
			d, _ := time.ParseDuration(m[4])
			n, _ := strconv.ParseInt(m[3], 10, 64)
			return d, n
		}
	}
	b.Fatalf("no upload of %s in the master's log", image)
	return 0, 0
}

// BenchmarkImageDelivery, on five nodes, with ~100 MiB images (a 95 MiB
// random base layer with the probe, and a 1 MiB top layer):
//
//   - push: the master's upload of a new image to one node, against
//     OpenSSH's scp of the same bytes to the same node (goal ≥ 0.9×);
//
//   - fan-out: deploy to five nodes against deploy to one (goal ≤ 2×);
//
//   - layer change: bytes per node for a revision whose top layer
//     changed (goal ≤ 1.1 MiB);
//
//   - unchanged redeploy: bytes moved (goal 0).
//
//     go test -run XXX -bench ImageDelivery -benchtime 1x ./internal/master
func BenchmarkImageDelivery(b *testing.B) {
	const mib = 1 << 20
	e := benchEnv(b, 5)
	ctx := context.Background()
	importBig(b, e, "big:1", randomBytes(95*mib), randomBytes(mib))
	base2 := randomBytes(95 * mib)
	importBig(b, e, "big:2", base2, randomBytes(mib))
	importBig(b, e, "big:3", base2, randomBytes(mib))
	store, err := image.Open(filepath.Join(e.m.Dir, "images"), image.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	img1, _ := store.Resolve("big:1")
	b.ResetTimer()

	c0 := machineCPU(b)
	one := deployTimed(b, e, bigSpec("one", "big:1", 1))
	oneCPU := machineCPU(b) - c0
	pushTook, pushBytes := uploadTook(b, e, string(img1.Digest))
	// scp of the same bytes, the operator's way in, to a node.
	var blobs []string
	for _, d := range img1.Blobs() {
		blobs = append(blobs, store.BlobPath(d))
	}
	n1, _ := e.c.Node("n1")
	args := append([]string{"-q", "-i", e.c.OperatorKeyPath, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"},
		append(blobs, "root@"+n1.Addr.String()+":/tmp/")...)
	t0 := time.Now()
	if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
		b.Fatalf("scp: %v\n%s", err, out)
	}
	scpTook := time.Since(t0)

	c0 = machineCPU(b)
	sBefore, _ := e.m.Client.Stats(ctx)
	five := deployTimed(b, e, bigSpec("five", "big:2", 5))
	fiveCPU := machineCPU(b) - c0
	s0, _ := e.m.Client.Stats(ctx)
	deployTimed(b, e, bigSpec("five", "big:3", 5))
	s1, _ := e.m.Client.Stats(ctx)
	deployTimed(b, e, bigSpec("five", "big:3", 5, "env: {V: '2'}"))
	s2, _ := e.m.Client.Stats(ctx)
	b.StopTimer()

	moved := func(a, b masterapi.Stats) int64 { return b.PushedBytes - a.PushedBytes + b.PeerBytes - a.PeerBytes }
	b.ReportMetric(float64(pushBytes)/mib/pushTook.Seconds(), "push-MiB/s")
	b.ReportMetric(float64(pushBytes)/mib/scpTook.Seconds(), "scp-MiB/s")
	b.ReportMetric(scpTook.Seconds()/pushTook.Seconds(), "push/scp")
	b.ReportMetric(one.Seconds(), "deploy-1-node-s")
	b.ReportMetric(five.Seconds(), "deploy-5-nodes-s")
	b.ReportMetric(five.Seconds()/one.Seconds(), "fanout-ratio")
	// The machine's busy CPU time in each: on one small machine every
	// node's share of the work (decrypting, verifying, unpacking) is done
	// by the same cores, which bounds the fan-out ratio from below.
	// What the master's uplink carried for the five-node deploy, in copies
	// of the image (nodes fetch the rest from each other).
	b.ReportMetric(float64(s0.PushedBytes-sBefore.PushedBytes)/float64(pushBytes), "fanout-master-copies")
	b.ReportMetric(oneCPU, "cpu-s-1-node")
	b.ReportMetric(fiveCPU, "cpu-s-5-nodes")
	// The least the five-node deploy can take here, all cores busy, as a
	// fan-out ratio: what this machine allows, whatever the software does.
	b.ReportMetric(fiveCPU/float64(runtime.NumCPU())/one.Seconds(), "fanout-cpu-floor")
	b.ReportMetric(float64(moved(s0, s1))/5/mib, "layer-change-MiB/node")
	b.ReportMetric(float64(moved(s1, s2)), "unchanged-bytes")
	b.ReportMetric(0, "ns/op")
	if os.Getenv("MOAT_BENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "%s\n", tail(e.m.Log(), 60))
	}
}

// machineCPU is the CPU time the whole machine has been busy, in seconds.
func machineCPU(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])[1:]
	var busy float64
	for i, v := range f {
		n, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy / 100
}

// BenchmarkImageFanout delivers a ~41 MiB image to five nodes and, before
// that, another to one node, on links shaped as rented machines' are
// (every node sends and receives at most 100 Mbit/s, and the master sends
// at most that): the fan-out ratio the network allows, where
// BenchmarkImageDelivery's is bound by this machine's two cores. Goal:
// five nodes in at most 2× the time of one. Through the master's uplink
// alone, five copies would take about 5×. MOAT_BENCH_MBIT sets the rate.
//
//	go test -run XXX -bench ImageFanout -benchtime 1x ./internal/master
func BenchmarkImageFanout(b *testing.B) {
	const mib = 1 << 20
	mbit := 100
	if s := os.Getenv("MOAT_BENCH_MBIT"); s != "" {
		mbit, _ = strconv.Atoi(s)
	}
	e := benchEnv(b, 5)
	ctx := context.Background()
	importBig(b, e, "big:1", randomBytes(40*mib), randomBytes(mib))
	importBig(b, e, "big:2", randomBytes(40*mib), randomBytes(mib))
	if err := e.c.LimitBandwidth(int64(mbit) * 1e6); err != nil {
		b.Fatal(err)
	}
	long := func(yaml string) string { return strings.Replace(yaml, "deadline: 20s", "deadline: 10m", 1) }
	b.ResetTimer()
	one := deployTimed(b, e, long(bigSpec("one", "big:1", 1)))
	s0, _ := e.m.Client.Stats(ctx)
	five := deployTimed(b, e, long(bigSpec("five", "big:2", 5)))
	s1, _ := e.m.Client.Stats(ctx)
	b.StopTimer()
	size := float64(s0.PushedBytes)
	b.ReportMetric(one.Seconds(), "deploy-1-node-s")
	b.ReportMetric(five.Seconds(), "deploy-5-nodes-s")
	b.ReportMetric(five.Seconds()/one.Seconds(), "fanout-ratio")
	b.ReportMetric(float64(s1.PushedBytes-s0.PushedBytes)/size, "fanout-master-copies")
	b.ReportMetric(float64(mbit), "link-Mbit/s")
	b.ReportMetric(0, "ns/op")
	if os.Getenv("MOAT_BENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "%s\n", tail(e.m.Log(), 60))
	}
}
