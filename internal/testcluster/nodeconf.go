package testcluster

import (
	"os"
	"path/filepath"
)

// InstallWith is Install with more node.conf lines for this node only
// (Cluster.NodeConf is for every node): "edge=true" makes it an edge.
func (c *Cluster) InstallWith(name string, conf ...string) {
	c.t.Helper()
	c.AddNodeConf(name, conf...)
	c.Install(name)
}

// AddNodeConf appends lines to a node's node.conf, as its operator would;
// the daemon reads them when it (re)starts. Install appends its own after.
func (c *Cluster) AddNodeConf(name string, conf ...string) {
	c.t.Helper()
	n, err := c.Node(name)
	if err != nil {
		c.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(n.Dir, "etc-moat", "node.conf"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range conf {
		if _, err := f.WriteString(l + "\n"); err != nil {
			c.t.Fatal(err)
		}
	}
}
