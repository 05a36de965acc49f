package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkContainerStart compares, in one run, starting a container
// through the node API (request to process running: create the bundle,
// mount the rootfs, start the shim, runc run) with bare `runc run --detach`
// of an equivalent bundle (same config, same rootfs). Reported: p50 and p99
// of each, and the ratio of the p50s.
//
//	go test -run XXX -bench ContainerStart -benchtime 50x ./internal/node
func BenchmarkContainerStart(b *testing.B) {
	n := testcluster.StartNode(b)
	importFileB(b, n, testcluster.ProbeImage(b, probeImage))
	ctx := context.Background()
	// A reference container gives the bundle bare runc runs.
	ref, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "ref", Image: probeImage, Cmd: []string{"sleep"}}, false)
	if err != nil {
		b.Fatal(err)
	}
	refDir := filepath.Join(n.Root, "containers", ref.ID, "bundle")
	var moat, bare []time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("m%d", i)
		start := time.Now()
		if _, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: id, Image: probeImage, Cmd: []string{"sleep"}}, true); err != nil {
			b.Fatal(err)
		}
		moat = append(moat, time.Since(start))
		b.StopTimer()
		if err := n.Client.RemoveContainer(ctx, id, true); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, bareRuncRun(b, refDir, n.CgroupParent, i))
		b.StartTimer()
	}
	b.StopTimer()
	p50m, p99m := percentile(moat, 50), percentile(moat, 99)
	p50b, p99b := percentile(bare, 50), percentile(bare, 99)
	b.ReportMetric(ms(p50m), "moat-p50-ms")
	b.ReportMetric(ms(p99m), "moat-p99-ms")
	b.ReportMetric(ms(p50b), "runc-p50-ms")
	b.ReportMetric(ms(p99b), "runc-p99-ms")
	b.ReportMetric(float64(p50m)/float64(p50b), "p50-ratio")
	b.ReportMetric(0, "ns/op") // the per-op time mixes both; see the metrics
}

// bareRuncRun times `runc run --detach` of the reference bundle's config
// (its own cgroup, the reference's mounted rootfs), then removes it.
func bareRuncRun(b *testing.B, refBundle, cgroupParent string, i int) time.Duration {
	raw, err := os.ReadFile(filepath.Join(refBundle, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	id := fmt.Sprintf("bare%d", i)
	spec.Root.Path = filepath.Join(refBundle, "rootfs")
	spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + id
	bundle := b.TempDir()
	out, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), out, 0o600); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(refBundle))), "bare-runc")
	// A detached container inherits runc's stdio: a file, not a pipe,
	// or waiting for runc's output would wait for the container.
	errFile, err := os.Create(filepath.Join(bundle, "stderr"))
	if err != nil {
		b.Fatal(err)
	}
	defer errFile.Close()
	start := time.Now()
	cmd := exec.Command("runc", "--root", root, "run", "--detach", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = errFile, errFile
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(errFile.Name())
		b.Fatalf("runc run: %v: %s", err, out)
	}
	d := time.Since(start)
	exec.Command("runc", "--root", root, "kill", id, "KILL").Run()
	waitRuncStopped(b, root, id)
	exec.Command("runc", "--root", root, "delete", "--force", id).Run()
	return d
}

func waitRuncStopped(b *testing.B, root, id string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("runc", "--root", root, "state", id).Output()
		if err != nil || strings.Contains(string(out), `"stopped"`) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("bare container %s did not stop", id)
}

// BenchmarkFootprint measures the node daemon's memory idle and with 20
// running containers, and what each container's shim costs: its private
// memory (what a new container adds) and its proportional share (PSS).
//
//	go test -run XXX -bench Footprint -benchtime 1x ./internal/node
func BenchmarkFootprint(b *testing.B) {
	for range b.N {
		n := testcluster.StartNode(b)
		importFileB(b, n, testcluster.ProbeImage(b, probeImage))
		ctx := context.Background()
		idle := memOf(b, n.Pid())
		for i := range 20 {
			if _, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: fmt.Sprintf("f%d", i), Image: probeImage, Cmd: []string{"sleep"}}, true); err != nil {
				b.Fatal(err)
			}
		}
		busy := memOf(b, n.Pid())
		var shims []mem
		for _, pid := range pidsMatching(b, "moat shim "+n.Root) {
			shims = append(shims, memOf(b, pid))
		}
		if len(shims) != 20 {
			b.Fatalf("found %d shims, want 20", len(shims))
		}
		var priv, pss, rss float64
		for _, s := range shims {
			priv += s.private
			pss += s.pss
			rss += s.rss
		}
		k := float64(len(shims))
		b.ReportMetric(idle.rss, "daemon-idle-rss-MiB")
		b.ReportMetric(busy.rss, "daemon-20c-rss-MiB")
		b.ReportMetric(priv/k, "shim-private-MiB")
		b.ReportMetric(pss/k, "shim-pss-MiB")
		b.ReportMetric(rss/k, "shim-rss-MiB")
		b.ReportMetric(containerDirKiB(b, n.Root)/20, "disk-per-container-KiB")
	}
}

type mem struct{ rss, pss, private float64 } // MiB

func memOf(b *testing.B, pid int) mem {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	var m mem
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			m.rss = kb / 1024
		case "Pss:":
			m.pss = kb / 1024
		case "Private_Clean:", "Private_Dirty:":
			m.private += kb / 1024
		}
	}
	return m
}

func pidsMatching(b *testing.B, s string) []int {
	procs, _ := os.ReadDir("/proc")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), s) {
			out = append(out, pid)
		}
	}
	return out
}

// containerDirKiB is the disk the containers' own directories take
// (bundle, state, logs; not the shared image layers).
func containerDirKiB(b *testing.B, root string) float64 {
	out, err := exec.Command("du", "-sk", "-x", filepath.Join(root, "containers")).Output()
	if err != nil {
		b.Fatal(err)
	}
	kb, _ := strconv.ParseFloat(strings.Fields(string(out))[0], 64)
	return kb
}

func importFileB(b *testing.B, n *testcluster.Node, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := n.Client.ImportImage(context.Background(), f, ""); err != nil {
		b.Fatal(err)
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
