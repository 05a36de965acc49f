package master_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

var (
	benchRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	benchP      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\b`)
	benchErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)|Non-2xx or 3xx responses: (\d+)`)
)

// ingressWrk is one wrk -t2 -c50 -d10s run: requests/s, p50, p99, failures.
func ingressWrk(b *testing.B, prefix []string, url string, args ...string) (rps float64, p50, p99 time.Duration, failures int) {
	b.Helper()
	argv := append(append(prefix, "wrk", "-t2", "-c50", "-d10s", "--latency"), append(args, url)...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, out)
	}
	m := benchRPS.FindSubmatch(out)
	if m == nil {
		b.Fatalf("wrk: no Requests/sec in\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range benchP.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		d := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]))
		if string(m[1]) == "50" {
			p50 = d
		} else {
			p99 = d
		}
	}
	for _, m := range benchErrors.FindAllSubmatch(out, -1) {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(string(v))
			failures += n
		}
	}
	return rps, p50, p99, failures
}

// BenchmarkIngress: requests/s and latency through a real edge node (the
// node daemon's proxy and links) against straight to the replica, with
// wrk -t2 -c50 -d10s as issue 13 measured kamal-proxy (0.21x direct):
// direct runs wrk inside the replica's network namespace (containers
// have only loopback); "edge" sends to the edge node's address with the
// replica on the edge itself; "edge-node" the same from inside the edge
// node's network namespace (no veth: as kamal-proxy was measured, all on
// one loopback); "edge-ssh" with the replica on another node, reached
// over the link's SSH connection. Run with -benchtime 1x.
func BenchmarkIngress(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("needs wrk: apt-get install wrk")
	}
	c := testcluster.NewCluster(b, 2)
	c.AddNodeConf("n1", "edge=true")
	m := c.StartMaster()
	c.Enrol(m, "n1", "n2")
	m.ImportProbe(b, "probe:1")
	ctx := context.Background()
	n1, _ := c.Node("n1")
	edgeAddr := net.JoinHostPort(n1.Addr.String(), "80")
	edge := "http://" + edgeAddr + "/"
	client := &http.Client{Timeout: 5 * time.Second}

	// place deploys web's revision on node (the other cordoned) and
	// returns the replica's pid once the edge answers from it.
	rev := 0
	place := func(node, other string) int {
		b.Helper()
		for verb, n := range map[string]string{"uncordon": node, "cordon": other} {
			if err := m.Client.NodeVerb(ctx, n, verb); err != nil {
				b.Fatal(err)
			}
		}
		rev++
		resp, err := m.Client.Deploy(ctx, masterapi.DeployRequest{File: "app.yaml",
			// A whole core, so the replica's CPU limit does not cap both sides.
			Spec: strings.Replace(ingressSpec("web", "web.test", 1, fmt.Sprintf("env: {REV: \"%d\"}", rev)), "cpu: 100m", "cpu: 1", 1)})
		if err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := m.Client.Watch(wctx, "web", resp.Revision, func(masterapi.Progress) error { return nil }); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			reps, err := m.Client.Replicas(ctx, "web")
			if err != nil {
				b.Fatal(err)
			}
			if len(reps) == 1 && reps[0].Node == node {
				cs, err := c.NodeAPI(node).Containers(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for _, ct := range cs {
					if ct.ID == reps[0].ID && ct.State == nodeapi.StateRunning {
						if code, _, err := edgeGet(client, edgeAddr, "web.test", "/"); err == nil && code == http.StatusOK {
							return ct.Pid
						}
					}
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("web not on %s alone behind the edge within 30s: %+v", node, reps)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	type side struct {
		name     string
		rps      float64
		p50, p99 time.Duration
		failures int
	}
	var sides [4]side
	sides[0].name, sides[1].name, sides[2].name, sides[3].name = "direct", "edge", "edge-node", "edge-ssh"
	host := []string{"-H", "Host: web.test"}
	b.ResetTimer()
	for range b.N {
		pid := place("n1", "n2")
		direct := func() (float64, time.Duration, time.Duration, int) {
			return ingressWrk(b, []string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid)}, "http://127.0.0.1:8080/")
		}
		// Direct is measured before and after the edge on the same node,
		// and counts as the mean of both: on a shared machine the load
		// drifts within a round, and one direct run alone moved the
		// ratio by up to a third.
		var round [4]side
		for i, run := range []func() (float64, time.Duration, time.Duration, int){
			direct,
			func() (float64, time.Duration, time.Duration, int) { return ingressWrk(b, nil, edge, host...) },
			func() (float64, time.Duration, time.Duration, int) {
				return ingressWrk(b, []string{"ip", "netns", "exec", n1.NetNS}, edge, host...)
			},
			direct,
			func() (float64, time.Duration, time.Duration, int) {
				place("n2", "n1")
				return ingressWrk(b, nil, edge, host...)
			},
		} {
			rps, p50, p99, f := run()
			j, w := min(i, 3), 1.0
			if i == 0 || i == 3 {
				j, w = 0, 0.5
			}
			if i == 4 {
				j = 3
			}
			r := &round[j]
			r.rps += w * rps
			r.p50 += time.Duration(w * float64(p50))
			r.p99 += time.Duration(w * float64(p99))
			r.failures += f
		}
		for i, r := range round {
			s := &sides[i]
			s.rps += r.rps
			s.p50 += r.p50
			s.p99 += r.p99
			s.failures += r.failures
		}
		b.Logf("direct %.0f req/s (p50 %s, p99 %s); edge %.0f (p50 %s, p99 %s) %.3fx; edge-node %.0f (p50 %s, p99 %s) %.3fx; edge-ssh %.0f (p50 %s, p99 %s) %.3fx; %d failed",
			round[0].rps, round[0].p50, round[0].p99,
			round[1].rps, round[1].p50, round[1].p99, round[1].rps/round[0].rps,
			round[2].rps, round[2].p50, round[2].p99, round[2].rps/round[0].rps,
			round[3].rps, round[3].p50, round[3].p99, round[3].rps/round[0].rps,
			round[0].failures+round[1].failures+round[2].failures+round[3].failures)
	}
	n := float64(b.N)
	for _, s := range sides {
		b.ReportMetric(s.rps/n, s.name+"-req/s")
		b.ReportMetric(float64(s.p50.Microseconds())/n, s.name+"-p50-us")
		b.ReportMetric(float64(s.p99.Microseconds())/n, s.name+"-p99-us")
		if s.failures != 0 {
			b.Errorf("%s: %d failed requests", s.name, s.failures)
		}
	}
	b.ReportMetric(sides[1].rps/sides[0].rps, "edge-ratio")
	b.ReportMetric(sides[2].rps/sides[0].rps, "edge-node-ratio")
	b.ReportMetric(sides[3].rps/sides[0].rps, "edge-ssh-ratio")
}
