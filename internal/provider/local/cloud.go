package local

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/provider"
)

// Cloud is a provider of machines on this machine: each server is a local
// node (a network namespace on the cloud's own bridge, with its own sshd
// and private directories, its "disk"), created from an image and the
// user data as a real cloud's would be. The base image BaseImage is an
// empty Debian-like disk whose "cloud-init" applies the user data from
// outside (cloudinit.ParseStock); a snapshot of a machine with moat boots
// by running its own `moat node firstboot` inside, as a pool server does.
// It implements provider.Provider and provider.Imager, and Machines is it
// as provider.Machines (what the fake DigitalOcean and Hetzner APIs stand
// on).
//
// The state is the state file, read and written under a lock on the
// directory for every change: Clouds opened on the same directory, in
// one process or several (the master and moat pool image), see one
// cloud, and creates and destroys may run at once.
type Cloud struct {
	mu     sync.Mutex // in-process side of the lock
	name   string
	dir    string
	moat   string
	bridge string
	log    *slog.Logger
}

// cloudState is what the state file holds.
type cloudState struct {
	Name       string              `json:"name"`
	Subnet     netip.Prefix        `json:"subnet"`
	Gateway    netip.Addr          `json:"gateway"`
	Owner      int                 `json:"owner"` // see cloudOwner: for sweeping after crashes
	NextServer int                 `json:"nextServer"`
	NextImage  int                 `json:"nextImage"`
	LastAddr   netip.Addr          `json:"lastAddr"` // the address handed out last`
	Machines   map[string]*machine `json:"machines"` // by server id
	Images     map[string]*image   `json:"images"`   // by image id
}

type machine struct {
	Server provider.Server `json:"server"`
	Num    int             `json:"num"`
	Node   Node            `json:"node"`
	// Firstboot is what the machine's firstboot said when it refused.
	Firstboot string `json:"firstboot,omitempty"`
}

type image struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	From    string    `json:"from"` // the server id it was snapshotted from
	Created time.Time `json:"created"`
}

// BaseImage is the image of a fresh server: an empty disk with sshd,
// whose cloud-init reads the user data (any authorized key).
const BaseImage = "debian-12"

// Region is the local cloud's only region.
const Region = "local"

const cloudStateFile = "cloud.json"

// localTypes are the sizes the local cloud sells, free.
var localTypes = []provider.ServerType{
	{Name: "local-1", CPUMilli: 1000, MemoryBytes: 1 << 30, DiskBytes: 10 << 30, Regions: []string{Region}, Currency: "USD"},
	{Name: "local-2", CPUMilli: 2000, MemoryBytes: 2 << 30, DiskBytes: 20 << 30, Regions: []string{Region}, Currency: "USD"},
	{Name: "local-4", CPUMilli: 4000, MemoryBytes: 4 << 30, DiskBytes: 40 << 30, Regions: []string{Region}, Currency: "USD"},
}

var (
	_ provider.Provider = (*Cloud)(nil)
	_ provider.Imager   = (*Cloud)(nil)
)

// OpenCloud opens the cloud whose state is in dir, making it if dir holds
// none; moat is the binary that runs `moat dev node-init` (the machine's
// side of booting a node). The bridge is made on the first Create.
func OpenCloud(dir, moat string) (*Cloud, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"images", "machines"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("open cloud: %w", err)
		}
	}
	c := &Cloud{dir: dir, moat: moat, log: slog.Default().With("cloud", dir)}
	err = c.update(func(st *cloudState) error {
		if st.Name == "" {
			*st = cloudState{Name: "c" + randomLetters(6), NextServer: 1, NextImage: 1}
		}
		if st.Owner == 0 || !alive(st.Owner) {
			st.Owner = cloudOwner()
		}
		c.name = st.Name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open cloud %s: %w", dir, err)
	}
	c.bridge = "mc" + c.name
	return c, nil
}

// update runs f on the state under the lock, and saves it if f succeeds.
func (c *Cloud) update(f func(st *cloudState) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lock, err := os.OpenFile(filepath.Join(c.dir, "cloud.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock cloud state: %w", err)
	}
	st, err := readCloudState(c.dir)
	if err != nil {
		return err
	}
	if err := f(&st); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, cloudStateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save cloud state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, cloudStateFile)); err != nil {
		return fmt.Errorf("save cloud state: %w", err)
	}
	return nil
}

// read returns the state as it is.
func (c *Cloud) read() (cloudState, error) {
	var out cloudState
	err := c.update(func(st *cloudState) error { out = *st; return errReadOnly })
	if errors.Is(err, errReadOnly) {
		err = nil
	}
	return out, err
}

var errReadOnly = errors.New("read only")

func readCloudState(dir string) (cloudState, error) {
	var st cloudState
	b, err := os.ReadFile(filepath.Join(dir, cloudStateFile))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	} else if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return st, fmt.Errorf("cloud state in %s: %w", dir, err)
	}
	if st.Machines == nil {
		st.Machines = map[string]*machine{}
	}
	if st.Images == nil {
		st.Images = map[string]*image{}
	}
	return st, nil
}

// OwnerEnv names the process a cloud opened by this one (or its children:
// a master, moat pool image) belongs to, for SweepStaleClouds: a test
// sets it to its own pid, so its clouds outlive the short-lived processes
// that open them, and go once the test run is killed.
const OwnerEnv = "MOAT_LOCAL_OWNER"

// cloudOwner is the live process a newly opened cloud belongs to: the
// one OwnerEnv names, else this one.
func cloudOwner() int {
	if pid, err := strconv.Atoi(os.Getenv(OwnerEnv)); err == nil && pid > 0 && alive(pid) {
		return pid
	}
	return os.Getpid()
}

func randomLetters(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// Dir is the cloud's state directory.
func (c *Cloud) Dir() string { return c.dir }

// Bridge is the name of the cloud's bridge (made by the first Create).
func (c *Cloud) Bridge() string { return c.bridge }

// Kind is "local".
func (c *Cloud) Kind() string { return "local" }

// Types lists the local sizes, free of charge.
func (c *Cloud) Types(context.Context) ([]provider.ServerType, error) {
	return slices.Clone(localTypes), nil
}

func localType(name string) (provider.ServerType, bool) {
	for _, t := range localTypes {
		if t.Name == name {
			return t, true
		}
	}
	return provider.ServerType{}, false
}

var hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Create makes a server and boots it: it returns once its sshd answers
// (or once its firstboot refused the user data: the server then runs
// without sshd, as a real one would, and Firstboot tells why).
func (c *Cloud) Create(ctx context.Context, req provider.CreateRequest) (provider.Server, error) {
	if !hostnameRE.MatchString(req.Name) {
		return provider.Server{}, fmt.Errorf("create %q: a server name is a host name: lowercase letters, digits and dashes, at most 63", req.Name)
	}
	typ, ok := localType(req.Type)
	if !ok {
		return provider.Server{}, fmt.Errorf("create %s: server type %q: the local cloud has local-1, local-2, local-4: %w", req.Name, req.Type, provider.ErrNotFound)
	}
	if req.Region != "" && req.Region != Region {
		return provider.Server{}, fmt.Errorf("create %s: region %q: the local cloud has only %q: %w", req.Name, req.Region, Region, provider.ErrCapacity)
	}
	m, err := c.reserve(req)
	if err != nil {
		return provider.Server{}, err
	}
	refused, err := c.boot(ctx, &m, typ, req.UserData)
	if err != nil {
		c.destroy(m.Server.ID, &m.Node)
		return provider.Server{}, fmt.Errorf("create %s: %w", req.Name, err)
	}
	var out provider.Server
	err = c.update(func(st *cloudState) error {
		sm := st.Machines[m.Server.ID]
		if sm == nil {
			return fmt.Errorf("create %s: destroyed while it booted: %w", req.Name, provider.ErrNotFound)
		}
		sm.Node, sm.Firstboot = m.Node, refused
		if sm.Server.Status == provider.Pending {
			sm.Server.Status = provider.Running
		}
		out = cloneServer(sm.Server)
		return nil
	})
	if err != nil {
		if errors.Is(err, provider.ErrNotFound) {
			c.destroy(m.Server.ID, &m.Node) // what it started after the destroy
		}
		return provider.Server{}, err
	}
	if refused != "" {
		c.log.Warn("server's firstboot refused its user data: no sshd", "id", out.ID, "name", out.Name, "refusal", refused)
	}
	c.log.Info("server created", "id", out.ID, "name", out.Name, "image", out.Image, "ipv4", out.IPv4)
	return out, nil
}

// reserve records a new server, Pending, with its number and address,
// making the bridge if this is the first.
func (c *Cloud) reserve(req provider.CreateRequest) (machine, error) {
	var m machine
	err := c.update(func(st *cloudState) error {
		if req.Image != BaseImage && st.Images[req.Image] == nil {
			return fmt.Errorf("create %s: image %q: %w", req.Name, req.Image, provider.ErrNotFound)
		}
		used := map[netip.Addr]bool{}
		for _, m := range st.Machines {
			if m.Server.Name == req.Name {
				return fmt.Errorf("create %s: a server of that name exists (%s)", req.Name, m.Server.ID)
			}
			used[m.Node.Addr] = true
		}
		if !linkExists(c.bridge) {
			var err error
			if st.Subnet, st.Gateway, err = createBridge(c.bridge); err != nil {
				return err
			}
		}
		addr, ok := nextAddr(st.Subnet, st.LastAddr, used)
		if !ok {
			return fmt.Errorf("create %s: the local cloud's subnet %s is full: %w", req.Name, st.Subnet, provider.ErrCapacity)
		}
		st.LastAddr = addr
		num := st.NextServer
		st.NextServer++
		id := strconv.Itoa(num)
		m = machine{
			Num: num,
			Server: provider.Server{
				ID: id, Name: req.Name, Type: req.Type, Region: Region, Image: req.Image,
				Labels: maps.Clone(req.Labels), Status: provider.Pending, IPv4: addr.String(), Created: time.Now().UTC(),
			},
			Node: Node{
				Name: req.Name, Addr: addr,
				NetNS:    fmt.Sprintf("moat-%s-m%d", c.name, num),
				HostVeth: fmt.Sprintf("m%sm%d", c.name, num),
				Dir:      filepath.Join(c.dir, "machines", id),
			},
		}
		sm := m
		sm.Server.Labels = maps.Clone(req.Labels)
		st.Machines[id] = &sm
		return nil
	})
	return m, err
}

// nextAddr is the free address (.11 to .254) after last, round the
// subnet: a just-freed address is the last one handed out again, so
// neighbour caches have forgotten the server that had it.
func nextAddr(subnet netip.Prefix, last netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	base := subnet.Masked().Addr().As4()
	start := 11
	if last.Is4() && subnet.Contains(last) {
		start = int(last.As4()[3]) + 1
	}
	for i := range 244 {
		host := 11 + (start-11+i+244)%244
		a := base
		a[3] = byte(host)
		if addr := netip.AddrFrom4(a); !used[addr] {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// cgroupParent is where a machine's containers go: nodes sharing this
// kernel must not share cgroups.
func (c *Cloud) cgroupParent(num int) string {
	return fmt.Sprintf("moat-%s-m%d", c.name, num)
}

// Get reports one server.
func (c *Cloud) Get(_ context.Context, id string) (provider.Server, error) {
	st, err := c.read()
	if err != nil {
		return provider.Server{}, err
	}
	m, ok := st.Machines[id]
	if !ok {
		return provider.Server{}, fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return m.Server, nil
}

// List returns the servers carrying all the labels, by id.
func (c *Cloud) List(_ context.Context, labels map[string]string) ([]provider.Server, error) {
	st, err := c.read()
	if err != nil {
		return nil, err
	}
	var out []provider.Server
	for _, m := range st.Machines {
		if hasLabels(m.Server.Labels, labels) {
			out = append(out, m.Server)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	return out, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func cloneServer(s provider.Server) provider.Server {
	s.Labels = maps.Clone(s.Labels)
	return s
}

// Destroy kills a server and removes it and its disk; one already gone is
// not an error.
func (c *Cloud) Destroy(_ context.Context, id string) error {
	var n *Node
	err := c.update(func(st *cloudState) error {
		m, ok := st.Machines[id]
		if !ok {
			return nil
		}
		m.Server.Status = provider.Deleting
		node := m.Node
		n = &node
		return nil
	})
	if err != nil || n == nil {
		return err
	}
	return c.destroy(id, n)
}

// destroy kills a machine's processes, removes its namespace, link,
// cgroups and directory, and forgets it. On error the machine stays
// recorded (Off), for another Destroy to finish.
func (c *Cloud) destroy(id string, n *Node) error {
	num, _ := strconv.Atoi(id)
	var errs []error
	errs = append(errs, killNode(n, c.cgroupParent(num)))
	if err := run("ip", "netns", "del", n.NetNS); err != nil && netnsExists(n.NetNS) {
		errs = append(errs, err)
	}
	if err := run("ip", "link", "del", n.HostVeth); err != nil && linkExists(n.HostVeth) {
		errs = append(errs, err)
	}
	// This machine's cache of the address's link-layer address: the next
	// server there has another.
	run("ip", "neigh", "flush", "to", n.Addr.String(), "dev", c.bridge)
	if err := errors.Join(errs...); err != nil {
		c.update(func(st *cloudState) error {
			if m := st.Machines[id]; m != nil {
				m.Server.Status = provider.Off
			}
			return nil
		})
		return fmt.Errorf("destroy server %s (%s): %w", id, n.Name, err)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		return fmt.Errorf("destroy server %s: %w", id, err)
	}
	c.log.Info("server destroyed", "id", id, "name", n.Name)
	return c.update(func(st *cloudState) error {
		delete(st.Machines, id)
		return nil
	})
}

// DestroyAll destroys every server, the images, the bridge and the state
// directory: what a test made, gone.
func (c *Cloud) DestroyAll() error {
	if _, err := os.Stat(c.dir); errors.Is(err, os.ErrNotExist) {
		return nil // destroyed already (swept)
	}
	st, err := c.read()
	if err != nil {
		return err
	}
	var errs []error
	for id, m := range st.Machines {
		errs = append(errs, c.destroy(id, &m.Node))
	}
	if err := run("ip", "link", "del", c.bridge); err != nil && linkExists(c.bridge) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (the cloud's state is kept in %s: destroy it again)", err, c.dir)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.dir, err)
	}
	tidyMachine()
	return nil
}

// SweepStaleClouds destroys the clouds in the directories matching glob
// whose last opening process is gone: what a killed test run left behind.
func SweepStaleClouds(glob string) error {
	dirs, _ := filepath.Glob(glob)
	var errs []error
	for _, d := range dirs {
		st, err := readCloudState(d)
		if err != nil || st.Name == "" || st.Owner == 0 || alive(st.Owner) {
			continue
		}
		c := &Cloud{dir: d, name: st.Name, bridge: "mc" + st.Name, log: slog.Default().With("cloud", d)}
		errs = append(errs, c.DestroyAll())
	}
	return errors.Join(errs...)
}

// Machine is a server's local node, for tests: its directory, address,
// namespace, sshd.
func (c *Cloud) Machine(id string) (Node, error) {
	st, err := c.read()
	if err != nil {
		return Node{}, err
	}
	m, ok := st.Machines[id]
	if !ok {
		return Node{}, fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return m.Node, nil
}

// Firstboot is what the server's firstboot said when it refused the user
// data ("" if it did not refuse).
func (c *Cloud) Firstboot(id string) (string, error) {
	st, err := c.read()
	if err != nil {
		return "", err
	}
	m, ok := st.Machines[id]
	if !ok {
		return "", fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return m.Firstboot, nil
}

// byName finds a server's id by its name.
func (c *Cloud) byName(name string) (string, bool, error) {
	st, err := c.read()
	if err != nil {
		return "", false, err
	}
	for id, m := range st.Machines {
		if m.Server.Name == name {
			return id, true, nil
		}
	}
	return "", false, nil
}
