package local

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Local clusters take /24s from 10.250.0.0/16: .1 is the bridge (this
// machine's side), nodes are .11 upwards.
const subnetBase = "10.250."

// createBridge picks a free /24 and puts a bridge on it. The pick happens
// under a lock, so clusters created at once (parallel test packages) never
// share a subnet.
func (c *Cluster) createBridge() error {
	if linkExists(c.Bridge) {
		return fmt.Errorf("create bridge: %s already exists (another cluster named %s? moat dev down removes it)", c.Bridge, c.Name)
	}
	var err error
	c.Subnet, c.Gateway, err = createBridge(c.Bridge)
	return err
}

// createBridge makes a bridge on a free /24 (under the machine's lock) and
// returns the subnet and the bridge's address on it.
func createBridge(bridge string) (netip.Prefix, netip.Addr, error) {
	lock, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("create bridge: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("create bridge: lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	subnet, err := freeSubnet()
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, err
	}
	gateway := subnet.Addr().Next()
	if linkExists(bridge) {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("create bridge: %s already exists", bridge)
	}
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", netip.PrefixFrom(gateway, 24).String(), "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			run("ip", "link", "del", bridge)
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("create bridge: %w", err)
		}
	}
	return subnet, gateway, nil
}

// freeSubnet returns a 10.250.X.0/24 no interface of this machine uses.
func freeSubnet() (netip.Prefix, error) {
	used := map[string]bool{}
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				used[p.Masked().Addr().String()] = true
			}
		}
	}
	for x := 1; x < 255; x++ {
		base := fmt.Sprintf("%s%d.0", subnetBase, x)
		if !used[base] {
			return netip.MustParsePrefix(base + "/24"), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in %s0.0/16", subnetBase)
}

// createNetwork gives node i its namespace, a veth to the bridge, and an
// address. No default route: the node reaches the bridge and nothing else.
func (c *Cluster) createNetwork(n *Node) error { return createNetwork(c.Bridge, n) }

func createNetwork(bridge string, n *Node) error {
	ns := []string{"-n", n.NetNS}
	for _, args := range [][]string{
		{"netns", "add", n.NetNS},
		{"link", "add", n.HostVeth, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
		{"link", "set", n.HostVeth, "master", bridge, "up"},
		append(ns, "addr", "add", netip.PrefixFrom(n.Addr, 24).String(), "dev", "eth0"),
		append(ns, "link", "set", "eth0", "up"),
		append(ns, "link", "set", "lo", "up"),
	} {
		if err := run("ip", args...); err != nil {
			return fmt.Errorf("node %s network: %w", n.Name, err)
		}
	}
	return nil
}

// CutLink takes a node's link down: its processes live on, unreachable,
// as behind a failed switch port.
func (c *Cluster) CutLink(name string) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	return run("ip", "link", "set", n.HostVeth, "down")
}

// RestoreLink brings a cut link back.
func (c *Cluster) RestoreLink(name string) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	return run("ip", "link", "set", n.HostVeth, "up")
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// run runs a command and folds its stderr into the error.
func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// LimitBandwidth shapes the links as a rented machine's network is
// shaped: each node sends at most bitsPerSec and receives at most
// bitsPerSec, and this machine (where the master runs) sends to the nodes
// at most bitsPerSec. Zero lifts the limits. Benchmarks use it to measure
// what the network, not this machine's CPU, allows.
func (c *Cluster) LimitBandwidth(bitsPerSec int64) error {
	shape := func(ns, dev string) error {
		args := []string{"qdisc", "del", "dev", dev, "root"}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		run("tc", args...) // none yet is fine
		if bitsPerSec <= 0 {
			return nil
		}
		// The bucket holds 20 ms of traffic, and at least a 64 KiB
		// segmentation-offload packet with room to spare.
		burst := max(bitsPerSec/8/50, 256<<10)
		args = []string{"qdisc", "add", "dev", dev, "root", "tbf", "rate", fmt.Sprintf("%dbit", bitsPerSec),
			"burst", fmt.Sprint(burst), "latency", "200ms"}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		err := run("tc", args...)
		if err != nil && (strings.Contains(err.Error(), "qdisc kind is unknown") || errors.Is(err, exec.ErrNotFound)) {
			return fmt.Errorf("traffic shaping (tc tbf) is not available here: %w: %w", err, errors.ErrUnsupported)
		}
		return err
	}
	if err := shape("", c.Bridge); err != nil {
		return fmt.Errorf("shape %s: %w", c.Bridge, err)
	}
	for _, n := range c.Nodes {
		if err := shape(n.NetNS, "eth0"); err != nil {
			return fmt.Errorf("shape node %s uplink: %w", n.Name, err)
		}
		if err := shape("", n.HostVeth); err != nil {
			return fmt.Errorf("shape node %s downlink: %w", n.Name, err)
		}
	}
	return nil
}

// DropPackets makes a node's network lose a share of its packets, each
// way, at random (iptables' statistic match: this kernel has no netem).
// Zero stops the loss.
func (c *Cluster) DropPackets(name string, probability float64) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		run("ip", "netns", "exec", n.NetNS, "iptables", "-F", chain)
		if probability <= 0 {
			continue
		}
		if err := run("ip", "netns", "exec", n.NetNS, "iptables", "-A", chain, "-m", "statistic", "--mode", "random",
			"--probability", fmt.Sprint(probability), "-j", "DROP"); err != nil {
			return fmt.Errorf("drop packets on %s (needs iptables): %w", name, err)
		}
	}
	return nil
}
