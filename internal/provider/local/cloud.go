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
// on). Safe for concurrent use; one process opens a state directory.
type Cloud struct {
	mu    sync.Mutex
	state cloudState
	log   *slog.Logger
}

// cloudState is what the state file holds.
type cloudState struct {
	Name       string              `json:"name"`
	Dir        string              `json:"dir"`
	Moat       string              `json:"moat"`
	Bridge     string              `json:"bridge"`
	Subnet     netip.Prefix        `json:"subnet"`
	Gateway    netip.Addr          `json:"gateway"`
	Owner      int                 `json:"owner"`
	NextServer int                 `json:"nextServer"`
	NextImage  int                 `json:"nextImage"`
	Machines   map[string]*machine `json:"machines"` // by server id
	Images     map[string]*image   `json:"images"`   // by image id
}

type machine struct {
	Server provider.Server `json:"server"`
	Num    int             `json:"num"`
	Node   *Node           `json:"node"`
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
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o700); err != nil {
		return nil, fmt.Errorf("open cloud: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "machines"), 0o700); err != nil {
		return nil, fmt.Errorf("open cloud: %w", err)
	}
	c := &Cloud{log: slog.Default().With("cloud", dir)}
	b, err := os.ReadFile(filepath.Join(dir, cloudStateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &c.state); err != nil {
			return nil, fmt.Errorf("open cloud %s: %w", dir, err)
		}
	case errors.Is(err, os.ErrNotExist):
		c.state = cloudState{Name: "c" + randomLetters(6), NextServer: 1, NextImage: 1}
	default:
		return nil, fmt.Errorf("open cloud: %w", err)
	}
	c.state.Dir, c.state.Moat, c.state.Owner = dir, moat, os.Getpid()
	c.state.Bridge = "mc" + c.state.Name
	if c.state.Machines == nil {
		c.state.Machines = map[string]*machine{}
	}
	if c.state.Images == nil {
		c.state.Images = map[string]*image{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c, c.saveLocked()
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
func (c *Cloud) Dir() string { return c.state.Dir }

// Bridge is the name of the cloud's bridge (made by the first Create).
func (c *Cloud) Bridge() string { return c.state.Bridge }

func (c *Cloud) saveLocked() error {
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.state.Dir, cloudStateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save cloud state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.state.Dir, cloudStateFile)); err != nil {
		return fmt.Errorf("save cloud state: %w", err)
	}
	return nil
}

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
// without sshd, as a real one would, and Console tells why).
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
	// Booting changes the node (its sshd, host key): a copy, put back
	// under the lock.
	c.mu.Lock()
	n := *m.Node
	c.mu.Unlock()
	if err := c.boot(ctx, m, &n, typ, req.UserData); err != nil {
		c.mu.Lock()
		m.Node = &n
		c.mu.Unlock()
		c.destroy(m)
		return provider.Server{}, fmt.Errorf("create %s: %w", req.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m.Node = &n
	m.Server.Status = provider.Running
	if err := c.saveLocked(); err != nil {
		return provider.Server{}, err
	}
	c.log.Info("server created", "id", m.Server.ID, "name", m.Server.Name, "image", m.Server.Image, "ipv4", m.Server.IPv4)
	return cloneServer(m.Server), nil
}

// reserve records a new server, Pending, with its number and address,
// making the bridge if this is the first.
func (c *Cloud) reserve(req provider.CreateRequest) (*machine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Image != BaseImage && c.state.Images[req.Image] == nil {
		return nil, fmt.Errorf("create %s: image %q: %w", req.Name, req.Image, provider.ErrNotFound)
	}
	used := map[netip.Addr]bool{}
	for _, m := range c.state.Machines {
		if m.Server.Name == req.Name {
			return nil, fmt.Errorf("create %s: a server of that name exists (%s)", req.Name, m.Server.ID)
		}
		used[m.Node.Addr] = true
	}
	if !linkExists(c.state.Bridge) {
		var err error
		if c.state.Subnet, c.state.Gateway, err = createBridge(c.state.Bridge); err != nil {
			return nil, err
		}
	}
	addr := c.state.Gateway
	for range 10 {
		addr = addr.Next()
	}
	for used[addr] {
		addr = addr.Next()
	}
	if !c.state.Subnet.Contains(addr) || addr.As4()[3] == 255 {
		return nil, fmt.Errorf("create %s: the local cloud's subnet %s is full: %w", req.Name, c.state.Subnet, provider.ErrCapacity)
	}
	num := c.state.NextServer
	c.state.NextServer++
	id := strconv.Itoa(num)
	m := &machine{
		Num: num,
		Server: provider.Server{
			ID: id, Name: req.Name, Type: req.Type, Region: Region, Image: req.Image,
			Labels: maps.Clone(req.Labels), Status: provider.Pending, IPv4: addr.String(), Created: time.Now().UTC(),
		},
		Node: &Node{
			Name: req.Name, Addr: addr,
			NetNS:    fmt.Sprintf("moat-%s-m%d", c.state.Name, num),
			HostVeth: fmt.Sprintf("m%sm%d", c.state.Name, num),
			Dir:      filepath.Join(c.state.Dir, "machines", id),
		},
	}
	c.state.Machines[id] = m
	return m, c.saveLocked()
}

// cgroupParent is where a machine's containers go: nodes sharing this
// kernel must not share cgroups.
func (c *Cloud) cgroupParent(m *machine) string {
	return fmt.Sprintf("moat-%s-m%d", c.state.Name, m.Num)
}

// Get reports one server.
func (c *Cloud) Get(_ context.Context, id string) (provider.Server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.state.Machines[id]
	if !ok {
		return provider.Server{}, fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return cloneServer(m.Server), nil
}

// List returns the servers carrying all the labels, by id.
func (c *Cloud) List(_ context.Context, labels map[string]string) ([]provider.Server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []provider.Server
	for _, m := range c.state.Machines {
		if hasLabels(m.Server.Labels, labels) {
			out = append(out, cloneServer(m.Server))
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
	c.mu.Lock()
	m, ok := c.state.Machines[id]
	if ok {
		if m.Server.Status == provider.Deleting {
			c.mu.Unlock()
			return nil // another call is at it
		}
		m.Server.Status = provider.Deleting
		c.saveLocked()
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.destroy(m)
}

// destroy kills a machine's processes, removes its namespace, link,
// cgroups and directory, and forgets it. On error the machine stays
// recorded (Deleting), for another Destroy to finish.
func (c *Cloud) destroy(m *machine) error {
	c.mu.Lock()
	n := *m.Node
	c.mu.Unlock()
	var errs []error
	errs = append(errs, killNode(&n, c.cgroupParent(m)))
	if err := run("ip", "netns", "del", n.NetNS); err != nil && netnsExists(n.NetNS) {
		errs = append(errs, err)
	}
	if err := run("ip", "link", "del", n.HostVeth); err != nil && linkExists(n.HostVeth) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		c.mu.Lock()
		m.Server.Status = provider.Off
		c.saveLocked()
		c.mu.Unlock()
		return fmt.Errorf("destroy server %s (%s): %w", m.Server.ID, m.Server.Name, err)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		return fmt.Errorf("destroy server %s: %w", m.Server.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.state.Machines, m.Server.ID)
	c.log.Info("server destroyed", "id", m.Server.ID, "name", m.Server.Name)
	return c.saveLocked()
}

// DestroyAll destroys every server, the images, the bridge and the state
// directory: what a test made, gone.
func (c *Cloud) DestroyAll() error {
	c.mu.Lock()
	ms := slices.Collect(maps.Values(c.state.Machines))
	c.mu.Unlock()
	var errs []error
	for _, m := range ms {
		errs = append(errs, c.destroy(m))
	}
	if err := run("ip", "link", "del", c.state.Bridge); err != nil && linkExists(c.state.Bridge) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (the cloud's state is kept in %s: destroy it again)", err, c.state.Dir)
	}
	if err := os.RemoveAll(c.state.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.state.Dir, err)
	}
	tidyMachine()
	return nil
}

// SweepStaleClouds destroys the clouds in the directories matching glob
// whose opening process is gone: what a killed test run left behind.
func SweepStaleClouds(glob string) error {
	dirs, _ := filepath.Glob(glob)
	var errs []error
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, cloudStateFile))
		if err != nil {
			continue
		}
		var st cloudState
		if json.Unmarshal(b, &st) != nil || st.Owner == 0 || alive(st.Owner) {
			continue
		}
		c := &Cloud{state: st, log: slog.Default().With("cloud", d)}
		if c.state.Machines == nil {
			c.state.Machines = map[string]*machine{}
		}
		errs = append(errs, c.DestroyAll())
	}
	return errors.Join(errs...)
}

// Machine is a server's local node, for tests: its directory, address,
// namespace, sshd.
func (c *Cloud) Machine(id string) (Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.state.Machines[id]
	if !ok {
		return Node{}, fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return *m.Node, nil
}

// Firstboot is what the server's firstboot said when it refused the user
// data ("" if it did not refuse).
func (c *Cloud) Firstboot(id string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.state.Machines[id]
	if !ok {
		return "", fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
	}
	return m.Firstboot, nil
}

// byName finds a live server by name.
func (c *Cloud) byName(name string) (*machine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.state.Machines {
		if m.Server.Name == name {
			return m, true
		}
	}
	return nil, false
}
