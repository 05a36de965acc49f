package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backendEnv makes the test binary a trivial HTTP backend (the benchmark's
// upstream runs in its own process, as an app would).
const backendEnv = "MOAT_EDGE_BENCH_BACKEND"

func TestMain(m *testing.M) {
	if os.Getenv(backendEnv) != "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(l.Addr())
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// wrkResult is what the benchmark reads from wrk's report.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	requests int
	failures int // socket errors and non-2xx/3xx answers
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\b`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(b *testing.B, url string, args ...string) wrkResult {
	b.Helper()
	cmd := exec.Command("wrk", append([]string{"-t2", "-c50", "-d10s", "--latency"}, append(args, url)...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		b.Fatalf("wrk: no Requests/sec in\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range wrkLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := wrkRequests.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.Atoi(m[1])
	}
	if m := wrkSocket.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			r.failures += n
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.failures += n
	}
	return r
}

// BenchmarkEdge compares requests/s through the edge with requests/s
// straight to the backend, as issue 13 measured kamal-proxy (wrk -t2 -c50
// -d10s, a trivial backend on loopback: 0.21x direct). The goal is 0.25x.
// Run with -benchtime 1x: each side is one 10 s wrk run.
func BenchmarkEdge(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("needs wrk: apt-get install wrk")
	}
	backend := exec.Command(os.Args[0])
	backend.Env = append(os.Environ(), backendEnv+"=1")
	stdout, _ := backend.StdoutPipe()
	if err := backend.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Process.Kill(); backend.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("backend: %v", err)
	}
	backendAddr := strings.TrimSpace(line)

	bk := newBackends()
	bk.set("bench", 80, backendAddr)
	s, addr := startEdge(b, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "bench.test", App: "bench", Port: 80}}}); err != nil {
		b.Fatal(err)
	}
	// The same edge with every request through ReverseProxy and net/http's
	// Transport, as before the lean path (forward.go): the gain, measured
	// in the same run.
	rp, rpAddr := startEdge(b, Config{Dial: bk.Dial})
	rp.noLean = true
	if err := rp.SetTable(Table{Routes: []Route{{Host: "bench.test", App: "bench", Port: 80}}}); err != nil {
		b.Fatal(err)
	}
	// Each iteration is one wrk run direct then one through each edge, so
	// the machine's other load falls on all alike; -benchtime 3x gives
	// three rounds, summed.
	var direct, edge, rpEdge wrkResult
	var cpu, rpCPU time.Duration
	b.ResetTimer()
	for range b.N {
		d := runWrk(b, "http://"+backendAddr+"/")
		cpu0 := cpuTime()
		e := runWrk(b, "http://"+addr+"/", "-H", "Host: bench.test")
		cpu += cpuTime() - cpu0
		cpu0 = cpuTime()
		o := runWrk(b, "http://"+rpAddr+"/", "-H", "Host: bench.test")
		rpCPU += cpuTime() - cpu0
		direct.add(d)
		edge.add(e)
		rpEdge.add(o)
		b.Logf("direct %.0f req/s (p99 %s); edge %.0f req/s (p50 %s, p99 %s): %.3fx; ReverseProxy path %.0f req/s (p50 %s, p99 %s): %.3fx",
			d.rps, d.p99, e.rps, e.p50, e.p99, e.rps/d.rps, o.rps, o.p50, o.p99, o.rps/d.rps)
	}
	n := float64(b.N)
	b.ReportMetric(direct.rps/n, "direct-req/s")
	b.ReportMetric(edge.rps/n, "edge-req/s")
	b.ReportMetric(edge.rps/direct.rps, "ratio")
	b.ReportMetric(float64(direct.p99.Microseconds())/n, "direct-p99-us")
	b.ReportMetric(float64(edge.p99.Microseconds())/n, "edge-p99-us")
	b.ReportMetric(float64(edge.p50.Microseconds())/n, "edge-p50-us")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(edge.requests, 1)), "edge-cpu-us/req")
	b.ReportMetric(rpEdge.rps/direct.rps, "rp-ratio")
	b.ReportMetric(float64(rpEdge.p99.Microseconds())/n, "rp-p99-us")
	b.ReportMetric(float64(rpCPU.Microseconds())/float64(max(rpEdge.requests, 1)), "rp-cpu-us/req")
	b.ReportMetric(float64(edge.failures+direct.failures+rpEdge.failures), "failures")
	b.ReportMetric(float64(maxRSS())/1024, "maxrss-MiB")
	if edge.failures+direct.failures+rpEdge.failures != 0 {
		b.Errorf("%d failed requests through the edge, %d through ReverseProxy, %d direct", edge.failures, rpEdge.failures, direct.failures)
	}
}

// add sums runs (latencies too: the report divides by the runs).
func (r *wrkResult) add(o wrkResult) {
	r.rps += o.rps
	r.p50 += o.p50
	r.p99 += o.p99
	r.requests += o.requests
	r.failures += o.failures
}

// cpuTime is this process's user and system CPU time (the edge's, since
// the backend and wrk are other processes).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS is this process's peak resident set in KiB: the test binary
// with the edge in it.
func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}

// BenchmarkRouteMemory: the heap a route costs the edge (issue 13 asks
// what the node daemon adds per ingress route), with 10,000 routes, and
// how long a SetTable of them takes.
func BenchmarkRouteMemory(b *testing.B) {
	const n = 10000
	routes := make([]Route, n)
	for i := range routes {
		routes[i] = Route{Host: fmt.Sprintf("app%d.example.com", i/2), Path: fmt.Sprintf("/p%d", i%2), App: fmt.Sprintf("app%d", i), Port: 8080}
	}
	s, err := New(Config{Dial: newBackends().Dial})
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	var took time.Duration
	for range b.N {
		s.SetTable(Table{})
		runtime.GC()
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		if err := s.SetTable(Table{Routes: routes}); err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/route")
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "settable-ms/10k-routes")
}
