package local

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// privateDirs are bind-mounted from the node's directory over the
// machine's, inside the node's mount namespace only. The machine needs a
// directory to mount over: node-init makes those missing. Those that are
// moat's own (own) are removed again, if empty, with the last local node.
var privateDirs = []struct {
	sub, target string
	mode        os.FileMode
	own         bool
}{
	{"root", "/root", 0o700, false},
	{"etc-ssh", "/etc/ssh", 0o755, false},
	{"etc-moat", "/etc/moat", 0o755, true},
	{"usr-local-bin", "/usr/local/bin", 0o755, false},
	{"var-lib-moat", "/var/lib/moat", 0o700, true},
	{"run-moat", "/run/moat", 0o755, true},
	// Where a master's api socket is (moat api), on a node that is a
	// master's host (testcluster.MasterHost).
	{"run-moat-api", "/run/moat-api", 0o755, true},
	// sshd's privilege separation directory, and where its pid file is:
	// the machine's /run is shared by every node.
	{"run-sshd", "/run/sshd", 0o755, false},
	// Each node's logs: the node daemon's, when enrolment starts it
	// without systemd, are its /var/log/moat-node.log.
	{"var-log", "/var/log", 0o755, false},
	// A node is not run by the machine's systemd: without this, enrolment
	// would see /run/systemd/system and install the node's daemon as a
	// unit of the machine's own init, outside the node.
	{"run-systemd", "/run/systemd", 0o755, true},
	// Where enrolment in image mode (moat pool image) puts the node's
	// units and cloud-init's settings: the node's, not the machine's.
	{"etc-systemd-system", "/etc/systemd/system", 0o755, false},
	{"etc-cloud", "/etc/cloud", 0o755, true},
	// Last: the node's directory may be under /tmp, which this hides.
	{"tmp", "/tmp", 0o1777, false},
}

// sshdConfig is the node's sshd_config, shaped as Debian's: drop-ins in
// /etc/ssh/sshd_config.d first (enrolment hardens sshd there), a pid file
// that finds the daemon to reload.
const sshdConfig = `# moat local node %[1]s
Include /etc/ssh/sshd_config.d/*.conf
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
`

func (c *Cluster) createNode(i int, authorizedKeys []string) (*Node, error) {
	addr := c.Subnet.Addr()
	for range 10 + i {
		addr = addr.Next()
	}
	n := &Node{
		Name: fmt.Sprintf("n%d", i), Addr: addr,
		NetNS:    fmt.Sprintf("moat-%s-n%d", c.Name, i),
		HostVeth: fmt.Sprintf("m%sn%d", c.Name, i),
		Dir:      filepath.Join(c.Dir, fmt.Sprintf("n%d", i)),
	}
	for _, d := range privateDirs {
		if err := os.MkdirAll(filepath.Join(n.Dir, d.sub), d.mode); err != nil {
			return nil, err
		}
	}
	etcSSH := filepath.Join(n.Dir, "etc-ssh")
	key := filepath.Join(etcSSH, "ssh_host_ed25519_key")
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "moat-"+n.NetNS, "-f", key); err != nil {
		return nil, fmt.Errorf("node %s host key: %w", n.Name, err)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, err
	}
	n.HostKey = strings.TrimSpace(string(pub))
	files := map[string]string{
		filepath.Join(etcSSH, "sshd_config"):              fmt.Sprintf(sshdConfig, n.NetNS),
		filepath.Join(n.Dir, "root/.ssh/authorized_keys"): strings.Join(authorizedKeys, "\n") + "\n",
		// The node daemon's settings: containers of nodes sharing this
		// kernel must not share cgroups.
		filepath.Join(n.Dir, "etc-moat/node.conf"): "cgroup-parent=moat-" + c.Name + "-" + n.Name + "\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	return n, c.createNetwork(n)
}

// startSSHD starts the node's sshd in the node's namespaces and waits until
// it accepts connections.
func (c *Cluster) startSSHD(n *Node) error {
	if err := startSSHD(c.Moat, n); err != nil {
		return err
	}
	return c.save()
}

func startSSHD(moat string, n *Node) error {
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "sshd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(moat, "dev", "node-init", "--netns", n.NetNS, "--dir", n.Dir, "--hostname", n.Name, "--",
		"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config")
	cmd.Stdout, cmd.Stderr = logf, logf
	// A mount namespace of its own (Go makes / private in it), where
	// node-init puts the node's directories.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s sshd: %w", n.Name, err)
	}
	n.SSHDPid = cmd.Process.Pid
	go cmd.Wait()
	if err := waitTCP(netip.AddrPortFrom(n.Addr, 22), 15*time.Second); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("node %s sshd: %w\n%s", n.Name, err, log)
	}
	return nil
}

func waitTCP(ap netip.AddrPort, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", ap.String(), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s: %w", ap, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Command runs a program inside a node: its mount and network namespaces,
// where /var/lib/moat, /run/moat and the rest are the node's own.
func (c *Cluster) Command(name string, args ...string) (*exec.Cmd, error) {
	n, err := c.Node(name)
	if err != nil {
		return nil, err
	}
	return n.command(args...)
}

func (n *Node) command(args ...string) (*exec.Cmd, error) {
	if n.SSHDPid == 0 || !alive(n.SSHDPid) {
		return nil, fmt.Errorf("node %s is stopped", n.Name)
	}
	return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(n.SSHDPid), "-m", "-n", "-u", "--"}, args...)...), nil
}

// StartDaemon starts the node daemon inside a node, as an init system
// would, and waits until it answers on the node's socket.
func (c *Cluster) StartDaemon(name string) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	return startDaemon(n)
}

func startDaemon(n *Node) error {
	cmd, err := n.command(nodeapi.BinaryPath, "node", "serve")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "node.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s daemon: %w", n.Name, err)
	}
	go cmd.Wait()
	return waitUnix(filepath.Join(n.Dir, "run-moat", "node.sock"), 15*time.Second)
}

func waitUnix(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s: %w", path, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StopNode powers a node off: its link goes down first, so nothing more
// leaves it (a machine losing power says no goodbye: no FIN, no RST), then
// every process in it, containers included, is killed. Its disk (the node
// directory) stays.
func (c *Cluster) StopNode(name string) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	if err := run("ip", "link", "set", n.HostVeth, "down"); err != nil {
		return err
	}
	return c.killNode(n)
}

// StartNode boots a stopped node: sshd, and the node daemon if moat is
// installed on it.
func (c *Cluster) StartNode(name string) error {
	n, err := c.Node(name)
	if err != nil {
		return err
	}
	if err := run("ip", "link", "set", n.HostVeth, "up"); err != nil {
		return err
	}
	if err := c.startSSHD(n); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "usr-local-bin", "moat")); err == nil {
		return c.StartDaemon(name)
	}
	return nil
}

// killNode kills every process in the node's network namespace (sshd,
// the node daemon, shims) until none is left — first, so nothing restarts
// a container meanwhile — then the containers, which live in namespaces of
// their own, then their cgroups.
func (c *Cluster) killNode(n *Node) error { return killNode(n, "moat-"+c.Name+"-"+n.Name) }

// killNode kills a node's processes, and those in its cgroup parent.
func killNode(n *Node, cgroupParent string) error {
	if netnsExists(n.NetNS) {
		for range 50 {
			out, err := exec.Command("ip", "netns", "pids", n.NetNS).Output()
			pids := strings.Fields(string(out))
			if err != nil || len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	runcRoot := nodeapi.Layout{Root: filepath.Join(n.Dir, "var-lib-moat")}.Runc()
	if ids, err := os.ReadDir(runcRoot); err == nil {
		for _, id := range ids {
			exec.Command("runc", "--root", runcRoot, "kill", id.Name(), "KILL").Run()
			exec.Command("runc", "--root", runcRoot, "delete", "--force", id.Name()).Run()
		}
	}
	n.SSHDPid = 0
	// Killed processes take a moment to leave their cgroups. A container
	// the daemon was starting as it was killed is not in the node's
	// network namespace nor yet in runc's state directory: its `runc
	// init` is found in the node's cgroups.
	parent := cgroupParent
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		killCgroupProcs(parent)
		if err = removeCgroups(parent); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// killCgroupProcs kills every process in a cgroup parent and its
// children, in every hierarchy.
func killCgroupProcs(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	for _, d := range append(dirs, "/sys/fs/cgroup/"+parent) {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

// removeCgroups removes a cgroup parent (and its empty children) from every
// hierarchy, v1 and v2.
func removeCgroups(parent string) error {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	dirs = append(dirs, "/sys/fs/cgroup/"+parent)
	for _, d := range dirs {
		subs, _ := os.ReadDir(d)
		for _, s := range subs {
			if s.IsDir() {
				os.Remove(filepath.Join(d, s.Name()))
			}
		}
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
	}
	return nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
