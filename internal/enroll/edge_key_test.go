package enroll_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAddEdgeKey: node add --edge makes the operator's edge cache key
// once (0600, beside the operator's other keys) and installs that same key
// on every edge (0600); enrolling again leaves it; a node whose key
// differs (its own, made when it first started) gets the operator's, and
// node add says it replaced it. The master's database never holds it.
func TestAddEdgeKey(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	o := newOperator(t, c)
	var local string
	for _, e := range o.env {
		if v, ok := strings.CutPrefix(e, "MOAT_EDGE_KEY="); ok {
			local = v
		}
	}
	_, errOut := o.mustMoat("node", "add", "-F", o.sshConfig, "--edge", "n1")
	key, err := os.ReadFile(local)
	if err != nil || len(key) != 32 {
		t.Fatalf("the operator's edge key: %d bytes, %v", len(key), err)
	}
	if fi, _ := os.Stat(local); fi.Mode().Perm() != 0o600 {
		t.Errorf("the operator's edge key is %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(errOut, "made the cluster's edge cache key") || !strings.Contains(errOut, "installed the cluster's edge cache key") {
		t.Errorf("node add --edge n1 did not say it made and installed the key:\n%s", errOut)
	}
	o.mustMoat("node", "add", "-F", o.sshConfig, "--edge", "n2")
	for _, n := range []string{"n1", "n2"} {
		nd, _ := c.Node(n)
		path := filepath.Join(nd.Dir, "var-lib-moat", "edge", "acme.key")
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s's edge key is not the operator's: %v", n, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's edge key: %v, want 0600", n, err)
		}
	}

	_, errOut = o.mustMoat("node", "add", "-F", o.sshConfig, "--edge", "n1")
	if strings.Contains(errOut, "edge cache key") {
		t.Errorf("enrolling again touched the key:\n%s", errOut)
	}

	// n2 gets a key of its own (as a node made an edge by hand would):
	// node add --edge puts the cluster's back, and says so.
	nd, _ := c.Node("n2")
	own := bytes.Repeat([]byte{9}, 32)
	if err := os.WriteFile(filepath.Join(nd.Dir, "var-lib-moat", "edge", "acme.key"), own, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut = o.mustMoat("node", "add", "-F", o.sshConfig, "--edge", "n2")
	if !strings.Contains(errOut, "replaced the node's edge cache key") {
		t.Errorf("node add --edge over another key did not say it replaced it:\n%s", errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(nd.Dir, "var-lib-moat", "edge", "acme.key")); !bytes.Equal(got, key) {
		t.Error("n2's key was not replaced by the operator's")
	}
	db, err := os.ReadFile(filepath.Join(o.m.Dir, "master.db"))
	if err != nil {
		t.Fatalf("the master's database: %v", err)
	}
	wal, _ := os.ReadFile(filepath.Join(o.m.Dir, "master.db-wal"))
	if bytes.Contains(db, key) || bytes.Contains(wal, key) {
		t.Error("the master's database holds the edge key")
	}
}
