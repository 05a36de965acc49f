// Package local runs moat nodes on this machine, for development (moat dev
// up) and tests. Each node is a network namespace on a shared bridge, with
// its own address, its own real OpenSSH sshd, and its own private /root,
// /etc/ssh, /etc/moat, /usr/local/bin, /var/lib/moat, /run/moat and
// /var/log, so enrolling and running a node here is the same as on a
// rented VPS. Nodes have no route beyond the bridge: their traffic stays
// on this machine.
package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"golang.org/x/sys/unix"
)

// Options describe a cluster to create.
type Options struct {
	Name  string // [a-z0-9]{1,8}: names the bridge, namespaces and links
	Dir   string // state directory, created
	Nodes int
	Moat  string // the moat binary; runs `moat dev node-init` in each node
	// AuthorizedKeys are authorized_keys lines for root on every node: the
	// operator's access, as a VPS provider would install it.
	AuthorizedKeys []string
	// Keep makes the cluster outlive the process that creates it (moat dev
	// up). Otherwise SweepStale removes it once that process is gone.
	Keep bool
}

// Cluster is a set of local nodes on one bridge.
type Cluster struct {
	Name    string       `json:"name"`
	Dir     string       `json:"dir"`
	Moat    string       `json:"moat"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	Nodes   []*Node      `json:"nodes"`
	Owner   int          `json:"owner"` // pid of the process that made it, for sweeping after crashes
}

// Node is one local node.
type Node struct {
	Name     string     `json:"name"`
	Addr     netip.Addr `json:"addr"`
	NetNS    string     `json:"netns"`
	HostVeth string     `json:"hostVeth"`
	Dir      string     `json:"dir"`
	SSHDPid  int        `json:"sshdPid"`
	HostKey  string     `json:"hostKey"` // the sshd's ed25519 public key, authorized_keys format
}

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

const stateFile = "cluster.json"

// lockFile is what clusters pick their subnet under (see createBridge).
const lockFile = "/run/moat-local.lock"

// Create makes the bridge and the nodes and starts each node's sshd. On
// failure it removes whatever it made.
func Create(opts Options) (c *Cluster, err error) {
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("cluster name %q: want 1 to 8 lowercase letters or digits", opts.Name)
	}
	if opts.Nodes < 1 || opts.Nodes > 200 {
		return nil, fmt.Errorf("%d nodes: want 1 to 200", opts.Nodes)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	made := &Cluster{Name: opts.Name, Dir: dir, Moat: opts.Moat, Bridge: "mb" + opts.Name}
	if !opts.Keep {
		made.Owner = os.Getpid()
	}
	// A bridge already there is another cluster's: nothing is undone.
	if err := made.createBridge(); err != nil {
		return nil, err
	}
	c = made
	// Not c: a failed Create returns nil.
	defer func() {
		if err != nil {
			made.Destroy()
		}
	}()
	for i := 1; i <= opts.Nodes; i++ {
		n, err := c.createNode(i, opts.AuthorizedKeys)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		if err := c.save(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := c.startSSHD(n); err != nil {
			return nil, err
		}
	}
	return c, c.save()
}

// Load reads a cluster's state from its directory.
func Load(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("load cluster: %w", err)
	}
	var c Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("load cluster %s: %w", dir, err)
	}
	return &c, nil
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, stateFile))
}

// Node returns the node with the given name.
func (c *Cluster) Node(name string) (*Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("cluster %s has no node %q", c.Name, name)
}

// Destroy kills every process of every node (containers included), removes
// the namespaces, links and bridge, and deletes the state directory. It
// goes on past errors and reports them all; after an error it keeps the
// state directory, so that another Destroy (moat dev down again) can finish.
func (c *Cluster) Destroy() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, c.killNode(n))
		if err := run("ip", "netns", "del", n.NetNS); err != nil && netnsExists(n.NetNS) {
			errs = append(errs, err)
		}
		// Deleting the namespace deletes the veth pair, asynchronously:
		// a link that vanished meanwhile is not an error.
		if err := run("ip", "link", "del", n.HostVeth); err != nil && linkExists(n.HostVeth) {
			errs = append(errs, err)
		}
	}
	if err := run("ip", "link", "del", c.Bridge); err != nil && linkExists(c.Bridge) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// The state stays, so that destroying again can finish the job.
		return fmt.Errorf("%w (the cluster's state is kept in %s: destroy it again)", err, c.Dir)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.Dir, err)
	}
	tidyMachine()
	return nil
}

// tidyMachine removes, once no local node is left on the machine, what
// local nodes leave on it: the directories of moat's own they were
// mounted over, if empty (a directory someone put something in stays), and
// the lock clusters pick subnets under.
//
// Not while another cluster's node lives: removing a directory unmounts
// whatever is mounted on it in every other mount namespace. And the lock
// only when no one holds it: a cluster that opened it but has not locked
// it yet, in the same microsecond, is the one case left.
func tidyMachine() {
	if live, _ := filepath.Glob("/run/netns/moat-*"); len(live) > 0 {
		return
	}
	for _, d := range privateDirs {
		if d.own {
			os.Remove(d.target) // only if empty
		}
	}
	lock, err := os.Open(lockFile)
	if err != nil {
		return
	}
	defer lock.Close()
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.Remove(lockFile)
	}
}
