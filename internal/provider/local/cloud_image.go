package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/provider"
)

// diskDirs are a machine's "disk": what a snapshot copies. The rest of its
// private directories (run directories, logs, /tmp) start empty at boot.
var diskDirs = []string{"root", "etc-ssh", "etc-moat", "usr-local-bin", "var-lib-moat", "etc-systemd-system", "etc-cloud"}

// userDataFile is where a machine finds its user data (as a real one
// finds it at its cloud's metadata service): /run/moat/user-data inside.
const userDataFile = "run-moat/user-data"

// consoleFile is a machine's console: its firstboot's output.
const consoleFile = "console.log"

// boot fills a machine's disk from its image and starts it: the user data
// applied (by the base image's cloud-init from outside, or by the image's
// own moat node firstboot inside), then sshd, then the node daemon if the
// image has moat.
func (c *Cloud) boot(ctx context.Context, m *machine, typ provider.ServerType, userData string) (refused string, err error) {
	n := &m.Node
	for _, d := range privateDirs {
		if err := os.MkdirAll(filepath.Join(n.Dir, d.sub), d.mode); err != nil {
			return "", err
		}
	}
	if m.Server.Image != BaseImage {
		src := filepath.Join(c.dir, "images", m.Server.Image)
		for _, d := range diskDirs {
			if _, err := os.Stat(filepath.Join(src, d)); err != nil {
				continue
			}
			if err := run("cp", "-a", "--reflink=auto", filepath.Join(src, d)+"/.", filepath.Join(n.Dir, d)); err != nil {
				return "", fmt.Errorf("image %s: %w", m.Server.Image, err)
			}
		}
	}
	sshdConf := filepath.Join(n.Dir, "etc-ssh", "sshd_config")
	if _, err := os.Stat(sshdConf); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(sshdConf, []byte(fmt.Sprintf(sshdConfig, n.NetNS)), 0o600); err != nil {
			return "", err
		}
	}
	if err := c.writeNodeConf(m, typ); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, hostnameFile), []byte(n.Name+"\n"), 0o644); err != nil {
		return "", err
	}
	run("ip", "neigh", "flush", "to", n.Addr.String(), "dev", c.bridge) // a former server's
	if err := createNetwork(c.bridge, n); err != nil {
		return "", err
	}
	hasMoat := fileExists(filepath.Join(n.Dir, "usr-local-bin", "moat"))
	if hasMoat {
		refused, err := c.firstboot(ctx, n, userData)
		if err != nil {
			return "", err
		}
		if refused != "" {
			return refused, nil
		}
	} else if err := c.cloudInit(n, userData); err != nil {
		return "", err
	}
	pub, err := os.ReadFile(filepath.Join(n.Dir, "etc-ssh", "ssh_host_ed25519_key.pub"))
	if err != nil {
		return "", fmt.Errorf("no host key after the user data: %w", err)
	}
	n.HostKey = strings.TrimSpace(string(pub))
	if err := startSSHD(c.moat, n); err != nil {
		return "", err
	}
	if hasMoat {
		return "", startDaemon(n)
	}
	return "", nil
}

// writeNodeConf keeps the image's node.conf lines (require-signed, ...)
// but for the size and cgroup parent, which are this machine's.
func (c *Cloud) writeNodeConf(m *machine, typ provider.ServerType) error {
	path := filepath.Join(m.Node.Dir, "etc-moat", "node.conf")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var buf bytes.Buffer
	for _, line := range strings.Split(string(old), "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		if line == "" || key == "cpus" || key == "memory" || key == "cgroup-parent" {
			continue
		}
		buf.WriteString(line + "\n")
	}
	fmt.Fprintf(&buf, "cgroup-parent=%s\ncpus=%d\nmemory=%d\n", c.cgroupParent(m.Num), typ.CPUMilli/1000, typ.MemoryBytes)
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// cloudInit is a stock image's cloud-init: the user data, any key, applied
// from outside into the machine's directories. None: a fresh host key.
func (c *Cloud) cloudInit(n *Node, userData string) error {
	if userData == "" {
		key := filepath.Join(n.Dir, "etc-ssh", "ssh_host_ed25519_key")
		if fileExists(key) {
			return nil
		}
		if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "moat-"+n.NetNS, "-f", key); err != nil {
			return fmt.Errorf("host key: %w", err)
		}
		return nil
	}
	d, err := cloudinit.ParseStock([]byte(userData))
	if err != nil {
		return fmt.Errorf("the base image's cloud-init: %w", err)
	}
	if d.Hostname != n.Name {
		c.log.Info("user data names another hostname than the server", "server", n.Name, "hostname", d.Hostname)
	}
	return cloudinit.ApplyTo(cloudinit.Paths{
		SSHDir:         filepath.Join(n.Dir, "etc-ssh"),
		AuthorizedKeys: filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"),
		PeerKey:        filepath.Join(n.Dir, "etc-moat", "peer_ed25519"),
		OneTime:        filepath.Join(n.Dir, "etc-moat", "hostkey.onetime"),
		Hostname:       filepath.Join(n.Dir, hostnameFile),
	}, d)
}

// firstboot runs the image's own `moat node firstboot` inside the machine
// (its mount, network and uts namespaces, as its sshd will run), on the
// user data. It returns the refusal, if firstboot refused.
func (c *Cloud) firstboot(ctx context.Context, n *Node, userData string) (refused string, err error) {
	if !fileExists("/etc/hostname") {
		return "", errors.New("this machine has no /etc/hostname to mount a local server's over")
	}
	if err := os.WriteFile(filepath.Join(n.Dir, userDataFile), []byte(userData), 0o600); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.moat, "dev", "node-init", "--netns", n.NetNS, "--dir", n.Dir, "--hostname", n.Name, "--",
		nodeapi.BinaryPath, "node", "firstboot", "--user-data", "/run/moat/user-data")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	runErr := cmd.Run()
	os.WriteFile(filepath.Join(n.Dir, consoleFile), out.Bytes(), 0o600)
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		return "", nil
	case errors.As(runErr, &exit) && ctx.Err() == nil:
		return strings.TrimSpace(out.String()), nil
	default:
		return "", fmt.Errorf("firstboot: %w: %s", runErr, out.String())
	}
}

// Console is what a server's firstboot printed.
func (c *Cloud) Console(id string) (string, error) {
	n, err := c.Machine(id)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(n.Dir, consoleFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// Snapshot copies a server's disk into a new image. (A real cloud wants
// it powered off; here a running one's files are copied as they are.)
func (c *Cloud) Snapshot(ctx context.Context, serverID, name string) (string, error) {
	var id, dir string
	err := c.update(func(st *cloudState) error {
		m, ok := st.Machines[serverID]
		if !ok {
			return fmt.Errorf("snapshot server %s: %w", serverID, provider.ErrNotFound)
		}
		id = strconv.Itoa(st.NextImage)
		st.NextImage++
		dir = m.Node.Dir
		return nil
	})
	if err != nil {
		return "", err
	}
	dst := filepath.Join(c.dir, "images", id)
	err = func() error {
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		for _, d := range diskDirs {
			if _, err := os.Stat(filepath.Join(dir, d)); err != nil {
				continue
			}
			if err := run("cp", "-a", "--reflink=auto", filepath.Join(dir, d), filepath.Join(dst, d)); err != nil {
				return err
			}
		}
		// Containers' runtime state is not disk.
		return os.RemoveAll(nodeapi.Layout{Root: filepath.Join(dst, "var-lib-moat")}.Runc())
	}()
	if err != nil {
		os.RemoveAll(dst)
		return "", fmt.Errorf("snapshot server %s: %w", serverID, err)
	}
	err = c.update(func(st *cloudState) error {
		st.Images[id] = &image{ID: id, Name: name, From: serverID, Created: time.Now().UTC()}
		return nil
	})
	if err != nil {
		return "", err
	}
	c.log.Info("image made", "image", id, "name", name, "from", serverID)
	return id, nil
}

// DeleteImage removes an image; one already gone is not an error.
func (c *Cloud) DeleteImage(_ context.Context, id string) error {
	var ok bool
	err := c.update(func(st *cloudState) error {
		_, ok = st.Images[id]
		delete(st.Images, id)
		return nil
	})
	if err != nil || !ok {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.dir, "images", id)); err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return nil
}

// Images lists the image ids (the base image not included).
func (c *Cloud) Images() ([]string, error) {
	st, err := c.read()
	if err != nil {
		return nil, err
	}
	ids := slices.Collect(maps.Keys(st.Images))
	slices.Sort(ids)
	return ids, nil
}

// Machines is the cloud as provider.Machines (servers by name), what a
// fake cloud API stands on.
func (c *Cloud) Machines() provider.Machines { return machinesByName{c} }

type machinesByName struct{ c *Cloud }

func (b machinesByName) Boot(ctx context.Context, name, image, userData string) (string, error) {
	s, err := b.c.Create(ctx, provider.CreateRequest{Name: name, Type: "local-1", Region: Region, Image: image, UserData: userData})
	if err != nil {
		return "", err
	}
	return s.IPv4, nil
}

func (b machinesByName) Destroy(ctx context.Context, name string) error {
	id, ok, err := b.c.byName(name)
	if err != nil || !ok {
		return err
	}
	return b.c.Destroy(ctx, id)
}

// DeleteImage removes an image (not part of provider.Machines: a fake
// API's DELETE of an image may assert for it).
func (b machinesByName) DeleteImage(ctx context.Context, image string) error {
	return b.c.DeleteImage(ctx, image)
}

func (b machinesByName) Snapshot(ctx context.Context, name string) (string, error) {
	id, ok, err := b.c.byName(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("snapshot %s: %w", name, provider.ErrNotFound)
	}
	return b.c.Snapshot(ctx, id, name)
}
