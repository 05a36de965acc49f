package master_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// env is a cluster with a master and the probe image in its store.
type env struct {
	t *testing.T
	c *testcluster.Cluster
	m *testcluster.Master
}

func newEnv(t *testing.T, nodes int, masterArgs ...string) *env {
	t.Helper()
	c := testcluster.NewCluster(t, nodes)
	m := c.StartMaster(masterArgs...)
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	c.Enrol(m, names...)
	m.ImportProbe(t, "probe:1")
	return &env{t: t, c: c, m: m}
}

// spec is an app spec for the probe serving HTTP with a fast health check.
func spec(name string, replicas int, extra ...string) string {
	return fmt.Sprintf(`name: %s
image: probe:1
replicas: %d
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}
update: {deadline: 20s}
%s`, name, replicas, strings.Join(extra, "\n"))
}

func (e *env) deploy(yaml string) masterapi.DeployResponse {
	e.t.Helper()
	resp, err := e.m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: yaml, File: "app.yaml"})
	if err != nil {
		e.t.Fatalf("deploy: %v", err)
	}
	return resp
}

// wait follows a revision to the end of its rollout.
func (e *env) wait(app string, rev int) masterapi.Progress {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last masterapi.Progress
	err := e.m.Client.Watch(ctx, app, rev, func(p masterapi.Progress) error { last = p; return nil })
	if err != nil {
		e.t.Fatalf("watch %s revision %d: %v (last %+v)", app, rev, err, last)
	}
	return last
}

func (e *env) replicas(app string) []masterapi.Replica {
	e.t.Helper()
	reps, err := e.m.Client.Replicas(context.Background(), app)
	if err != nil {
		e.t.Fatal(err)
	}
	return reps
}

// waitReplicas polls until ok holds for the app's replicas.
func (e *env) waitReplicas(app, what string, timeout time.Duration, ok func([]masterapi.Replica) bool) []masterapi.Replica {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reps := e.replicas(app)
		if ok(reps) {
			return reps
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s: %+v", what, timeout, reps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(reps []masterapi.Replica) (n int, nodes map[string]int) {
	nodes = map[string]int{}
	for _, r := range reps {
		if r.State == "ready" && r.Desired == "run" {
			n++
			nodes[r.Node]++
		}
	}
	return n, nodes
}
