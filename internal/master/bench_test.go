package master_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// benchEnv is newEnv for benchmarks.
func benchEnv(b *testing.B, nodes int) *env {
	c := testcluster.NewCluster(b, nodes)
	m := c.StartMaster()
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	c.Enrol(m, names...)
	f, err := os.Open(testcluster.ProbeImage(b, "probe:1"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := m.Client.ImportImage(context.Background(), f, ""); err != nil {
		b.Fatal(err)
	}
	testcluster.SignImage(b, m.Client, "probe:1")
	return &env{t: &testing.T{}, c: c, m: m}
}

func (e *env) readyCount(app string) (int, map[string]int) {
	reps, err := e.m.Client.Replicas(context.Background(), app)
	if err != nil {
		return 0, nil
	}
	return ready(reps)
}

// BenchmarkFailover: three nodes, three replicas with a health check (200
// ms interval); a node holding one is powered off (its link first, so no
// connection reset warns the master): time until three healthy replicas
// run again. Five rounds, each killing a node that holds a replica. Goal:
// p50 ≤ 5 s at default settings.
//
//	go test -run XXX -bench Failover -benchtime 1x ./internal/master
func BenchmarkFailover(b *testing.B) {
	e := benchEnv(b, 3)
	ctx := context.Background()
	r, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec("web", 3)})
	if err != nil {
		b.Fatal(err)
	}
	waitDeployed(b, e, "web", r.Revision)
	var took []time.Duration
	for round := range max(b.N, 5) {
		_, nodes := e.readyCount("web")
		var victim string
		for _, n := range []string{"n1", "n2", "n3"} {
			if nodes[n] > 0 && (victim == "" || round%3 == int(n[1]-'1')) {
				victim = n
			}
		}
		t0 := time.Now()
		if err := e.c.StopNode(victim); err != nil {
			b.Fatal(err)
		}
		for {
			n, nodes := e.readyCount("web")
			if n == 3 && nodes[victim] == 0 {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatalf("round %d: no 3 ready replicas a minute after killing %s", round, victim)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		if os.Getenv("MOAT_BENCH_VERBOSE") != "" {
			fmt.Fprintf(os.Stderr, "round %d: killed %s, 3 ready after %s\n", round, victim, took[len(took)-1])
			if took[len(took)-1] > 5*time.Second {
				fmt.Fprintf(os.Stderr, "master log:\n%s\n", tail(e.m.Log(), 150))
			}
		}
		if err := e.c.StartNode(victim); err != nil {
			b.Fatal(err)
		}
		waitNodeUp(b, e, victim)
	}
	b.ReportMetric(seconds(pctl(took, 50)), "p50-s")
	b.ReportMetric(seconds(slices.Max(took)), "max-s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDeploy: the image already on the nodes, three replicas on three
// nodes, health checks every 200 ms: from moat deploy to all healthy, for a
// new app and for a rolling update (max surge 1) of a running one. Goal:
// ≤ 1 s.
//
//	go test -run XXX -bench Deploy -benchtime 5x ./internal/master
func BenchmarkDeploy(b *testing.B) {
	e := benchEnv(b, 3)
	ctx := context.Background()
	// Warm: the image reaches every node once.
	r, _ := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec("warm", 3)})
	waitDeployed(b, e, "warm", r.Revision)
	e.m.Client.RemoveApp(ctx, "warm")
	var fresh, update []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("app%d", i)
		t0 := time.Now()
		r, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec(name, 3)})
		if err != nil {
			b.Fatal(err)
		}
		waitDeployed(b, e, name, r.Revision)
		fresh = append(fresh, time.Since(t0))
		t0 = time.Now()
		r, err = e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec(name, 3, "env: {V: '2'}")})
		if err != nil {
			b.Fatal(err)
		}
		waitDeployed(b, e, name, r.Revision)
		update = append(update, time.Since(t0))
		e.m.Client.RemoveApp(ctx, name)
	}
	b.ReportMetric(seconds(pctl(fresh, 50)), "new-app-p50-s")
	b.ReportMetric(seconds(pctl(update, 50)), "rolling-update-p50-s")
	b.ReportMetric(0, "ns/op")
}

func waitDeployed(b *testing.B, e *env, app string, rev int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last masterapi.Progress
	if err := e.m.Client.Watch(ctx, app, rev, func(p masterapi.Progress) error { last = p; return nil }); err != nil || last.Status != "deployed" {
		b.Fatalf("deploy %s: %+v %v\n%s", app, last, err, e.m.Log())
	}
}

func waitNodeUp(b *testing.B, e *env, name string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		nodes, _ := e.m.Client.Nodes(context.Background())
		for _, n := range nodes {
			if n.Name == name && n.State == "up" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("node %s did not come back", name)
}

func pctl(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
