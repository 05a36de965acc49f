package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/metrics/sample"
	"github.com/moatcloud/moat/internal/nodeapi"
	moatruntime "github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkNodeSampling measures, in one run, what sampling costs the
// node daemon with 50 running containers, against Debian's
// prometheus-node-exporter and netdata run by hand on loopback:
//
//   - the daemon's CPU and RSS over a window at --metrics-interval 1h (no
//     sample in the window: the baseline), 10s and 1s, each after a
//     restart of the daemon on the same containers (node.conf's key, read
//     from --config);
//   - the sampler's own CPU per sample of the 50 containers and the node,
//     in this process (the thread's CPU time over many samples);
//   - node_exporter scraped every 10 s, then every 1 s;
//   - netdata (with its plugins) at its default 1 s.
//
// CPU is the kernel's per-thread schedstat (ns, not ticks), summed over
// every thread of the process (and, for netdata, of its plugins). The
// window is MOAT_BENCH_WINDOW (default 60s). node_exporter and netdata
// are installed with apt-get when missing.
//
//	go test -run XXX -bench NodeSampling -benchtime 1x -timeout 30m ./internal/node
func BenchmarkNodeSampling(b *testing.B) {
	window := 60 * time.Second
	if w := os.Getenv("MOAT_BENCH_WINDOW"); w != "" {
		var err error
		if window, err = time.ParseDuration(w); err != nil {
			b.Fatal(err)
		}
	}
	installDebian(b, "prometheus-node-exporter", "netdata")
	conf := filepath.Join(b.TempDir(), "node.conf")
	setInterval := func(d string) {
		if err := os.WriteFile(conf, []byte("metrics-interval="+d+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	setInterval("1h")
	n := testcluster.StartNode(b, "--config", conf)
	importFileB(b, n, testcluster.ProbeImage(b, probeImage))
	ctx := context.Background()
	const containers = 50
	for i := range containers {
		if _, err := n.Client.CreateContainer(ctx, nodeapi.ContainerSpec{Name: fmt.Sprintf("s%02d", i), Image: probeImage, Cmd: []string{"sleep"},
			Resources: nodeapi.Resources{MemoryBytes: 32 << 20}}, true); err != nil {
			b.Fatal(err)
		}
	}
	list, err := n.Client.Containers(ctx)
	if err != nil || len(list) != containers {
		b.Fatalf("%d containers, %v", len(list), err)
	}
	b.ResetTimer()
	for range b.N {
		// The daemon at three intervals.
		type phase struct {
			name string
			cpu  time.Duration
			rss  int64
		}
		var phases []phase
		for _, iv := range []string{"1h", "10s", "1s"} {
			setInterval(iv)
			n.Kill9()
			n.Start()
			time.Sleep(3 * time.Second) // let the restart settle: adoption, first sample
			pid := n.Pid()
			c0 := procCPU(pid)
			time.Sleep(window)
			phases = append(phases, phase{iv, procCPU(pid) - c0, procRSS(pid)})
		}
		base, at10, at1 := phases[0], phases[1], phases[2]
		core := func(d time.Duration) float64 { return d.Seconds() / window.Seconds() }
		b.Logf("daemon with %d containers over %s: %s CPU %.5f core, RSS %.1f MiB; at 10s %.5f core, %.1f MiB; at 1s %.5f core, %.1f MiB",
			containers, window, base.name, core(base.cpu), mib(base.rss), core(at10.cpu), mib(at10.rss), core(at1.cpu), mib(at1.rss))

		// The sampler alone, per sample, in this process.
		perSample, groups := samplerCost(b, n, list)

		// node_exporter, scraped every 10 s then every 1 s.
		neCPU10, neCPU1, neRSS, series := nodeExporter(b, window)
		// netdata at 1 s.
		ndCPU, ndRSS, dims := netdata(b, window)

		sampling10 := core(at10.cpu - base.cpu)
		sampling1 := core(at1.cpu - base.cpu)
		b.ReportMetric(sampling10, "moat-10s-core")
		b.ReportMetric(sampling1, "moat-1s-core")
		b.ReportMetric(mib(at10.rss-base.rss), "moat-10s-more-rss-MiB")
		b.ReportMetric(mib(at1.rss-base.rss), "moat-1s-more-rss-MiB")
		b.ReportMetric(float64(perSample.Microseconds()), "sampler-us/sample")
		b.ReportMetric(float64(groups), "groups/sample")
		b.ReportMetric(core(neCPU10), "node-exporter-10s-core")
		b.ReportMetric(core(neCPU1), "node-exporter-1s-core")
		b.ReportMetric(mib(neRSS), "node-exporter-rss-MiB")
		b.ReportMetric(float64(series), "node-exporter-series")
		b.ReportMetric(core(ndCPU), "netdata-1s-core")
		b.ReportMetric(mib(ndRSS), "netdata-rss-MiB")
		b.ReportMetric(float64(dims), "netdata-dimensions")
		b.ReportMetric(sampling10/core(neCPU10), "moat-10s/node-exporter-10s")
		b.ReportMetric(sampling1/core(ndCPU), "moat-1s/netdata-1s")
		b.ReportMetric(sampling1/core(neCPU1), "moat-1s/node-exporter-1s")
	}
}

// samplerCost samples the node and its containers many times in this
// process and returns the CPU time of one sample (this thread's), and the
// groups in it.
func samplerCost(b *testing.B, n *testcluster.Node, list []nodeapi.Container) (time.Duration, int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := sample.New(sample.Options{V2: moatruntime.CgroupMode() == "v2", Disk: n.Root})
	targets := make([]sample.Target, len(list))
	for i, c := range list {
		targets[i] = sample.Target{ID: c.ID, CgroupsPath: path.Join("/", n.CgroupParent, c.ID), Pid: c.Pid}
	}
	const rounds = 200
	t0 := threadCPU()
	var mem float64
	for range rounds {
		now := time.Now()
		s.Node(now)
		for _, c := range s.Containers(now, targets) {
			mem += c.Mem
		}
	}
	if !(mem > 0) {
		b.Fatalf("the sampler read no memory for %d containers", len(targets))
	}
	return (threadCPU() - t0) / rounds, 1 + len(targets)
}

// nodeExporter runs prometheus-node-exporter on loopback, scrapes it every
// 10 s then every 1 s for a window each, and returns its CPU in each
// window, its RSS at the end and the series it exposes.
func nodeExporter(b *testing.B, window time.Duration) (cpu10, cpu1 time.Duration, rss int64, series int) {
	addr := freeAddr(b)
	cmd := exec.Command("prometheus-node-exporter", "--web.listen-address="+addr)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	scrape := func() int {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		n := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" && line[0] != '#' {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for series = scrape(); series <= 0; series = scrape() {
		if time.Now().After(deadline) {
			b.Fatal("node_exporter did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, every := range []time.Duration{10 * time.Second, time.Second} {
		c0 := procCPU(cmd.Process.Pid)
		end := time.Now().Add(window)
		for t := time.Now(); t.Before(end); t = t.Add(every) {
			scrape()
			time.Sleep(time.Until(t.Add(every)))
		}
		if every == time.Second {
			cpu1 = procCPU(cmd.Process.Pid) - c0
		} else {
			cpu10 = procCPU(cmd.Process.Pid) - c0
		}
	}
	return cpu10, cpu1, procRSS(cmd.Process.Pid), series
}

// netdata runs netdata in the foreground on loopback with its defaults
// (every 1 s) and returns the CPU of it and its plugins over the window,
// their RSS at its end and the dimensions it collects.
func netdata(b *testing.B, window time.Duration) (cpu time.Duration, rss int64, dims int) {
	addr := freeAddr(b)
	host, port, _ := net.SplitHostPort(addr)
	// Its own directory, open to the netdata user it drops to (a test's
	// TempDir is not).
	dir, err := os.MkdirTemp("", "moat-bench-netdata-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	for _, d := range []string{"cache", "lib", "log"} {
		os.MkdirAll(filepath.Join(dir, d), 0o777)
		os.Chmod(filepath.Join(dir, d), 0o777)
	}
	cmd := exec.Command("netdata", "-D", "-i", host, "-p", port,
		"-W", "set", "global", "update every", "1",
		"-W", "set", "global", "cache directory", filepath.Join(dir, "cache"),
		"-W", "set", "global", "lib directory", filepath.Join(dir, "lib"),
		"-W", "set", "global", "log directory", filepath.Join(dir, "log"),
		"-W", "set", "cloud", "enabled", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	charts := func() int {
		resp, err := http.Get("http://" + addr + "/api/v1/charts")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var v struct {
			Charts map[string]struct {
				Dimensions map[string]json.RawMessage `json:"dimensions"`
			} `json:"charts"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&v) != nil {
			return -1
		}
		n := 0
		for _, c := range v.Charts {
			n += len(c.Dimensions)
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for charts() <= 0 {
		if time.Now().After(deadline) {
			b.Fatalf("netdata did not answer: %s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(10 * time.Second) // its plugins start after it answers
	c0 := treeCPU(cmd.Process.Pid)
	time.Sleep(window)
	return treeCPU(cmd.Process.Pid) - c0, treeRSS(cmd.Process.Pid), charts()
}

// installDebian installs the packages whose commands are missing.
func installDebian(b *testing.B, pkgs ...string) {
	cmds := map[string]string{"prometheus-node-exporter": "prometheus-node-exporter", "netdata": "netdata"}
	var missing []string
	for _, p := range pkgs {
		if _, err := exec.LookPath(cmds[p]); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	cmd := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("apt-get install %v: %v\n%s", missing, err, out)
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// procCPU is the CPU time of every thread of a process, from schedstat.
func procCPU(pid int) time.Duration {
	var sum time.Duration
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", syscall.Gettid()))
	if err != nil {
		return 0
	}
	ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	return time.Duration(ns)
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tree is a process and its descendants.
func tree(root int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 1 {
				parent[pid], _ = strconv.Atoi(f[1])
			}
		}
	}
	var out []int
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func treeCPU(root int) time.Duration {
	var sum time.Duration
	for _, p := range tree(root) {
		sum += procCPU(p)
	}
	return sum
}

func treeRSS(root int) int64 {
	var sum int64
	for _, p := range tree(root) {
		sum += procRSS(p)
	}
	return sum
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
