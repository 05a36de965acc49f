package node_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

const probeImage = "probe:1"

// newNode starts a node daemon with the probe image imported.
func newNode(t *testing.T, extraArgs ...string) *testcluster.Node {
	t.Helper()
	n := testcluster.StartNode(t, extraArgs...)
	importFile(t, n, testcluster.ProbeImage(t, probeImage))
	return n
}

func importFile(t *testing.T, n *testcluster.Node, path string) []nodeapi.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := n.Client.ImportImage(context.Background(), f, "")
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return imgs
}

func run(t *testing.T, n *testcluster.Node, spec nodeapi.ContainerSpec) nodeapi.Container {
	t.Helper()
	if spec.Image == "" {
		spec.Image = probeImage
	}
	c, err := n.Client.CreateContainer(context.Background(), spec, true)
	if err != nil {
		t.Fatalf("run %s: %v", spec.Name, err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitContainer polls the container until ok says so, and returns it.
func waitContainer(t *testing.T, n *testcluster.Node, id, what string, ok func(nodeapi.Container) bool) nodeapi.Container {
	t.Helper()
	var c nodeapi.Container
	waitFor(t, id+" "+what, 20*time.Second, func() bool {
		var err error
		c, err = n.Client.Container(context.Background(), id)
		if err != nil {
			t.Fatalf("inspect %s: %v", id, err)
		}
		return ok(c)
	})
	return c
}

func exited(c nodeapi.Container) bool { return c.State == nodeapi.StateExited }

// logLines returns the container's output lines so far.
func logLines(t *testing.T, n *testcluster.Node, id string, opts nodeapi.LogOptions) []nodeapi.LogEntry {
	t.Helper()
	var out []nodeapi.LogEntry
	if opts.Tail == 0 {
		opts.Tail = -1
	}
	err := n.Client.Logs(context.Background(), id, opts, func(e nodeapi.LogEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return out
}

// waitLog waits until a line containing substr is in the container's logs.
func waitLog(t *testing.T, n *testcluster.Node, id, substr string) nodeapi.LogEntry {
	t.Helper()
	var found nodeapi.LogEntry
	waitFor(t, id+" logging "+substr, 20*time.Second, func() bool {
		for _, e := range logLines(t, n, id, nodeapi.LogOptions{}) {
			if strings.Contains(e.Line, substr) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// report is what `probe report` prints (see testcluster/probe).
type report struct {
	UID, GID     int
	Groups       []int
	CapEff       string
	CapBnd       string
	CapAmb       string
	Seccomp      string
	NoNewPrivs   string
	Interfaces   []string
	RootWritable bool
	TmpWritable  bool
	TmpIsTmpfs   bool
	Pids         []int
	Hostname     string
	MemoryLimit  string
	PidsLimit    string
	CPUQuota     string
	KcoreBytes   int
	ProcSysWrite string
	NoFile       string
	Env          []string
	Cwd          string
}

// probeReport runs `probe report` with spec and returns what it saw.
func probeReport(t *testing.T, n *testcluster.Node, spec nodeapi.ContainerSpec) report {
	t.Helper()
	spec.Cmd = []string{"report"}
	return reportOf(t, n, run(t, n, spec).ID)
}

// reportOf waits for a probe started with "report" to exit and reads it.
func reportOf(t *testing.T, n *testcluster.Node, id string) report {
	t.Helper()
	c := waitContainer(t, n, id, "exited", exited)
	if c.ExitCode == nil || *c.ExitCode != 0 {
		t.Fatalf("probe report failed: %+v\nlogs: %v", c, logLines(t, n, c.ID, nodeapi.LogOptions{}))
	}
	var r report
	for _, e := range logLines(t, n, c.ID, nodeapi.LogOptions{}) {
		if e.Stream == "stdout" && strings.HasPrefix(e.Line, "{") {
			if err := json.Unmarshal([]byte(e.Line), &r); err != nil {
				t.Fatalf("parse report: %v", err)
			}
			return r
		}
	}
	t.Fatalf("no report in the logs of %s", c.ID)
	return r
}

// testclusterNodeWithImage starts a node with the probe image and a second
// probe image built with extra build flags.
func testclusterNodeWithImage(t *testing.T, name string, buildArgs ...string) *testcluster.Node {
	t.Helper()
	n := newNode(t)
	importFile(t, n, testcluster.ProbeImage(t, name, buildArgs...))
	return n
}
