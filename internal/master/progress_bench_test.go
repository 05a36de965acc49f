package master_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// stuckSpec is an app whose rollout goes on for minutes without anything
// changing: its health check knocks on a port nothing serves, and the
// start period hides the failures, so its replicas stay starting.
func stuckSpec(name string, replicas int) string {
	yaml := strings.Replace(spec(name, replicas), "ports: [{name: http, port: 8080}]",
		"ports: [{name: http, port: 8080}, {name: dead, port: 9999}]", 1)
	yaml = strings.Replace(yaml, "health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}",
		"health: {tcp: true, port: dead, interval: 1s, timeout: 150ms, retries: 2, startPeriod: 10m}", 1)
	return strings.Replace(yaml, "update: {deadline: 20s}", "update: {deadline: 10m}", 1)
}

// watchers starts n clients watching a revision's rollout, as moat deploy
// does; the returned function stops them.
func watchers(e *env, n int, app string, rev int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.m.Client.Watch(ctx, app, rev, func(masterapi.Progress) error { return nil })
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// progressOnce asks for a revision's progress without watching.
func progressOnce(e *env, app string, rev int) (masterapi.Progress, error) {
	var p masterapi.Progress
	return p, e.m.Client.Call(context.Background(), "GET", fmt.Sprintf("/v1/apps/%s/revisions/%d/progress", app, rev), nil, &p)
}

// progressStats reads the master's count of progress computations
// (GET /debug/progress).
func progressStats(e *env) (masterapi.ProgressStats, error) {
	var s masterapi.ProgressStats
	return s, e.m.Client.Call(context.Background(), "GET", "/debug/progress", nil, &s)
}

// BenchmarkProgressWatchers: the master's CPU while 50 clients watch a
// rollout in which nothing changes (three replicas waiting on a health
// check's start period), over 10 s, against the same 10 s without them.
// Goal: idle watchers cost about nothing.
//
//	go test -run XXX -bench ProgressWatchers -benchtime 1x ./internal/master
func BenchmarkProgressWatchers(b *testing.B) {
	const clients, window = 50, 10 * time.Second
	e := benchEnv(b, 3)
	ctx := context.Background()
	r, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: stuckSpec("stuck", 3)})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := progressOnce(e, "stuck", r.Revision)
		if err != nil {
			b.Fatal(err)
		}
		if p.Current == 3 && len(p.Transfers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the replicas were not all placed and delivered within a minute: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // settle: containers started, checks begun
	pid := e.m.Pid()
	cores := func() float64 {
		t0, c0 := time.Now(), cpuTicks(b, pid)
		time.Sleep(window)
		return float64(cpuTicks(b, pid)-c0) / 100 / time.Since(t0).Seconds()
	}
	idle := cores()
	stop := watchers(e, clients, "stuck", r.Revision)
	time.Sleep(time.Second)
	s0, err0 := progressStats(e)
	watched := cores()
	s1, err1 := progressStats(e)
	stop()
	if p, _ := progressOnce(e, "stuck", r.Revision); p.Status != "progressing" {
		b.Errorf("the rollout ended while watched: %+v", p)
	}
	b.ReportMetric(idle*1000, "master-mcores-unwatched")
	b.ReportMetric(watched*1000, "master-mcores-50-watchers")
	if err0 == nil && err1 == nil {
		b.ReportMetric(float64(s1.Computed-s0.Computed)/window.Seconds(), "computed/s")
	}
	b.ReportMetric(0, "ns/op")
}
