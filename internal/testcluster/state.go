package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Snapshot maps every path under dir (relative, "." for dir itself) to
// its mode and, for a regular file, a hash of its content: what a test
// compares before and after something that must not change it.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			v += " " + hex.EncodeToString(sum[:8])
		}
		rel, _ := filepath.Rel(dir, p)
		state[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// NodeState is what an attacker must not be able to change on a node: its
// operator-owned files (/etc/moat, /etc/ssh, root's ~/.ssh), as Snapshot
// sees them.
func (c *Cluster) NodeState(name string) map[string]string {
	c.t.Helper()
	n, err := c.Node(name)
	if err != nil {
		c.t.Fatal(err)
	}
	state := map[string]string{}
	for _, sub := range []string{"etc-moat", "etc-ssh", "root/.ssh"} {
		for p, v := range Snapshot(c.t, filepath.Join(n.Dir, sub)) {
			state[filepath.Join(sub, p)] = v
		}
	}
	return state
}

// NodeProcesses lists the command lines of the processes running in a
// node (in its network namespace: sshd, the daemon, shims, anything they
// started outside a container), sorted.
func (c *Cluster) NodeProcesses(name string) []string {
	c.t.Helper()
	n, err := c.Node(name)
	if err != nil {
		c.t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "pids", n.NetNS).Output()
	if err != nil {
		c.t.Fatal(err)
	}
	var procs []string
	for _, pid := range strings.Fields(string(out)) {
		cmd, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil || len(cmd) == 0 {
			continue // gone meanwhile, or a kernel thread
		}
		procs = append(procs, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	slices.Sort(procs)
	return procs
}
