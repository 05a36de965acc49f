package enroll

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// Where moat lives on a node.
const (
	BinaryPath     = nodeapi.BinaryPath
	UnitPath       = "/etc/systemd/system/moat-node.service"
	AuthorizedKeys = nodeapi.AuthorizedKeys
	PeerKeyPath    = nodeapi.PeerKey
)

// Options of an enrolment.
type Options struct {
	Access    inventory.Access
	ExtraSSH  []string // extra ssh options, e.g. -o UserKnownHostsFile=...
	Name      string   // node name; default the machine's short hostname
	Address   string   // host:port the master connects to; default what ssh -G resolves
	Labels    map[string]string
	Binary    string        // the moat binary to install; default this executable
	MasterKey ssh.PublicKey // pinned to the gate in root's authorized_keys
	// The cluster's peer key: PeerPublic is pinned to the gate's peer role
	// (blob reads only), PeerKey (private, OpenSSH PEM) is what this node
	// fetches from others with. Both empty: no peer fetching.
	PeerPublic ssh.PublicKey
	PeerKey    []byte
	// RequireSigned makes the node run only images signed by a key in
	// AllowedSigners (OpenSSH allowed_signers text), installed with it.
	RequireSigned  bool
	AllowedSigners []byte
	// SecretsKey is the operator's secrets key file (package secret),
	// installed as SecretsKeyPath; empty leaves the node without one.
	SecretsKey []byte
	// HardenSSHD installs moat's sshd drop-in (package hardening), kept
	// only if a new login works with it.
	HardenSSHD bool
	// Edge: true writes edge=true in the node's node.conf (it serves
	// ingress on 80/443), false removes the line, nil leaves it as is.
	Edge *bool
	// EdgeCacheKey is the cluster's edge cache key (32 bytes), installed
	// on the node when Edge is true, replacing any other.
	EdgeCacheKey []byte
	Progress     func(total int64) io.Writer // upload progress, may be nil
	Log          func(step string)           // what enrolment does, for the operator; may be nil
}

// Compiled on first use: see internal/spec.
var nodeNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`) })

// machine is what enrolment learns about the machine first.
type machine struct {
	arch, hostname string
	systemd        bool
}

// Add enrols the machine: installs the moat binary (checksum verified), pins
// the master's key to the gate in root's authorized_keys, starts the node
// daemon as a service, and records the host key. The caller registers the
// node with the master, which then connects through the gate. Running it
// again is safe: it changes only what differs.
func Add(ctx context.Context, opts Options) (inventory.Node, error) {
	log := opts.Log
	if log == nil {
		log = func(string) {}
	}
	if err := checkSigning(opts); err != nil {
		return inventory.Node{}, err
	}
	r, m, binary, err := open(ctx, opts.Access, opts.ExtraSSH, opts.Binary)
	if err != nil {
		return inventory.Node{}, err
	}
	defer r.close()
	name := opts.Name
	if name == "" {
		name = strings.ToLower(m.hostname)
	}
	if !nodeNameRE().MatchString(name) {
		return inventory.Node{}, errs.Invalid("name", "%q: a node name is lowercase letters, digits and '-' (use --name)", name)
	}
	changed, err := hardenAndInstall(ctx, r, opts.HardenSSHD, binary, opts.Progress, log)
	if err != nil {
		return inventory.Node{}, err
	}
	if err := installKeys(ctx, r, opts); err != nil {
		return inventory.Node{}, err
	}
	log("pinned the master's key to moat gate in " + AuthorizedKeys)
	if opts.PeerPublic != nil {
		log("pinned the peer key (blob reads only) to moat gate; its private half is " + PeerKeyPath)
	}
	confChanged, err := installSigning(ctx, r, opts)
	if err != nil {
		return inventory.Node{}, err
	}
	log(signingPolicy(opts.RequireSigned))
	edgeChanged, err := installEdge(ctx, r, opts.Edge)
	if err != nil {
		return inventory.Node{}, err
	}
	switch {
	case opts.Edge != nil && *opts.Edge:
		log("the node is an edge: it serves ingress on ports 80 and 443 (edge=true in " + NodeConf + ")")
	case opts.Edge != nil:
		log("the node is not an edge (no edge line in " + NodeConf + ")")
	}
	if opts.Edge != nil && *opts.Edge {
		keyChanged, replaced, err := installEdgeKey(ctx, r, opts.EdgeCacheKey)
		if err != nil {
			return inventory.Node{}, err
		}
		switch {
		case replaced:
			log("replaced the node's edge cache key with the cluster's (" + EdgeCacheKeyPath + "): certificates it cached alone are ordered again")
		case keyChanged:
			log("installed the cluster's edge cache key as " + EdgeCacheKeyPath + " (root's, 0600; the master never has it)")
		}
		edgeChanged = edgeChanged || keyChanged
	}
	if installed, err := installSecretsKey(ctx, r, opts.SecretsKey); err != nil {
		return inventory.Node{}, err
	} else if installed {
		log("installed the cluster's secrets key as " + SecretsKeyPath + " (root's, 0600)")
	}
	how, err := startDaemon(ctx, r, m.systemd, changed || confChanged || edgeChanged)
	if err != nil {
		return inventory.Node{}, err
	}
	log("node daemon " + how)
	hostKey, err := readHostKey(ctx, r)
	if err != nil {
		return inventory.Node{}, err
	}
	addr, err := masterAddress(ctx, r, opts.Address)
	if err != nil {
		return inventory.Node{}, err
	}
	return inventory.Node{
		Name: name, Addr: addr, User: "root", HostKey: sshkey.AuthorizedKey(hostKey),
		Labels: opts.Labels, Enrolled: time.Now().UTC(), Operator: opts.Access,
	}, nil
}

// open connects to the machine through the operator's ssh, learns what
// it is, and checks the binary to install (default: this executable) can
// run there. The caller closes the remote.
func open(ctx context.Context, access inventory.Access, extraSSH []string, binary string) (*remote, machine, string, error) {
	r, err := newRemote(access, extraSSH)
	if err != nil {
		return nil, machine{}, "", err
	}
	m, err := inspect(ctx, r)
	if err == nil && binary == "" {
		binary, err = os.Executable()
	}
	if err == nil {
		err = checkArch(binary, m.arch)
	}
	if err != nil {
		r.close()
		return nil, machine{}, "", err
	}
	return r, m, binary, nil
}

// hardenAndInstall hardens sshd (if asked) and installs the binary,
// saying whether the binary changed.
func hardenAndInstall(ctx context.Context, r *remote, harden bool, binary string, progress func(int64) io.Writer, log func(string)) (bool, error) {
	if harden {
		what, err := hardenSSHD(ctx, r, dropInFor)
		if err != nil {
			return false, err
		}
		log(what)
	}
	changed, err := installBinary(ctx, r, binary, progress)
	if err != nil {
		return false, err
	}
	log(map[bool]string{true: "installed " + BinaryPath, false: BinaryPath + " already up to date"}[changed])
	return changed, nil
}

// signingPolicy says what installSigning set up, for the operator.
func signingPolicy(requireSigned bool) string {
	if requireSigned {
		return "the node runs only images signed by a key in " + AllowedSigners
	}
	return "the node runs unsigned images (require-signed=false in " + NodeConf + ")"
}

func inspect(ctx context.Context, r *remote) (machine, error) {
	out, err := r.run(ctx, nil, "uname -m; id -u; hostname; test -d /run/systemd/system && echo systemd || echo none")
	if err != nil {
		return machine{}, err
	}
	f := strings.Fields(out)
	if len(f) != 4 {
		return machine{}, fmt.Errorf("inspect %s: unexpected answer %q", r.access.Dest, out)
	}
	m := machine{arch: f[0], hostname: strings.Split(f[2], ".")[0], systemd: f[3] == "systemd"}
	if f[1] != "0" {
		if _, err := r.run(ctx, nil, "sudo -n true"); err != nil {
			return machine{}, fmt.Errorf("%s is not root and has no passwordless sudo: enrolment installs a system service: %w", r.access.Dest, errs.ErrForbidden)
		}
		r.sudo = true
	}
	return m, nil
}

// checkArch refuses to install a binary the machine cannot run.
func checkArch(binary, machineArch string) error {
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("read %s: %w", binary, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "aarch64": elf.EM_AARCH64, "arm64": elf.EM_AARCH64}[machineArch]
	if want == 0 {
		return fmt.Errorf("the machine is %s: moat runs on x86_64 and aarch64: %w", machineArch, errs.ErrInvalid)
	}
	if f.Machine != want {
		return fmt.Errorf("the machine is %s but %s is built for %s: build moat for it (GOARCH=%s) and pass --binary: %w",
			machineArch, binary, f.Machine, map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[machineArch], errs.ErrInvalid)
	}
	return nil
}

func sha256File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// installBinary uploads the binary over SFTP unless the machine has the
// same one, checks the upload's sha256 there, and moves it into place.
func installBinary(ctx context.Context, r *remote, binary string, progress func(int64) io.Writer) (bool, error) {
	sum, size, err := sha256File(binary)
	if err != nil {
		return false, err
	}
	out, _ := r.run(ctx, nil, "sha256sum "+BinaryPath+" 2>/dev/null || true")
	if strings.HasPrefix(out, sum+" ") {
		return false, nil
	}
	tmp := "/tmp/.moat-upload-" + sum[:12] + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	client, done, err := r.sftp(ctx)
	if err != nil {
		return false, err
	}
	err = upload(client, binary, tmp, size, progress)
	done()
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", binary, err)
	}
	// Staged beside its place and renamed: atomic, and no "text file busy"
	// from a daemon running the old binary.
	staged := BinaryPath + ".new"
	cmd := fmt.Sprintf("echo %s' '%s | sha256sum -c --status && install -m 0755 %s %s && rm -f %s && mv -f %s %s",
		sum, shellQuote(tmp), shellQuote(tmp), staged, shellQuote(tmp), staged, BinaryPath)
	if _, err := r.run(ctx, nil, cmd); err != nil {
		r.run(ctx, nil, "rm -f "+shellQuote(tmp))
		return false, fmt.Errorf("the uploaded binary's checksum does not match %s: %w", sum, err)
	}
	return true, nil
}

// masterAddress is where the master will connect: given, or the host and
// port the operator's ssh resolves.
func masterAddress(ctx context.Context, r *remote, given string) (string, error) {
	if given != "" {
		if _, _, err := net.SplitHostPort(given); err != nil {
			return "", errs.Invalid("address", "%q: want HOST:PORT", given)
		}
		return given, nil
	}
	host, port, err := r.effective(ctx)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}
