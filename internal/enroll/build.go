package enroll

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/provider"
)

// LabelRole marks what a server moat made is for; a builder's is
// RoleBuilder.
const (
	LabelRole   = "moat-role"
	RoleBuilder = "builder"
)

// BuildOptions are those of BuildImage.
type BuildOptions struct {
	// Provider is the pool's cloud, opened with the operator's token; it
	// must take snapshots (provider.Imager).
	Provider provider.Provider
	// Cluster and Pool label the builder (with moat-role=builder).
	// Cluster may be empty: then the master's orphan reconciler, which
	// destroys only servers of its cluster, never sees it.
	Cluster, Pool string
	// Where and what the builder is: the base image (debian-12), the
	// server type and the region.
	Base, Type, Region string
	// OperatorKey is the operator's authorized_keys line: their root login
	// to the builder, kept in the image (their access to every pool node).
	OperatorKey string
	// Image is what Prepare installs; its Access names how the operator
	// logs in (Identity, SSHConfig...), Dest and host keys are filled in.
	Image ImageOptions
	// BootTimeout bounds the wait for the builder's sshd (default 10 min).
	BootTimeout time.Duration
	// Now names the image (default time.Now).
	Now func() time.Time
	Log func(step string)
}

// BuildImage makes a pool's image from the operator's machine: it creates
// a builder server from the base image with user data made here (a
// one-time host key, pinned in a known_hosts file of its own, and the
// operator's key), waits for its sshd, runs Prepare over the operator's
// ssh, snapshots it (powered off), and destroys it — always, failed or
// not, and any server the create left under the builder's name too. It
// returns the image's id.
func BuildImage(ctx context.Context, o BuildOptions) (image string, err error) {
	log := o.Log
	if log == nil {
		log = func(string) {}
	}
	imager, ok := o.Provider.(provider.Imager)
	if !ok {
		return "", fmt.Errorf("provider %s takes no snapshots: %w", o.Provider.Kind(), errs.ErrInvalid)
	}
	if o.Pool == "" || o.Base == "" || o.Type == "" {
		return "", errs.Invalid("pool", "a build needs the pool, the base image and a server type")
	}
	if _, err := ParseOperatorKey(o.OperatorKey); err != nil {
		return "", err
	}
	// What Prepare would refuse is refused before a server is paid for.
	if !metadataRE.MatchString(o.Image.Metadata) {
		return "", errs.Invalid("metadata", "%q: want a provider kind, e.g. digitalocean", o.Image.Metadata)
	}
	if err := checkSigning(Options{RequireSigned: o.Image.RequireSigned, AllowedSigners: o.Image.AllowedSigners}); err != nil {
		return "", err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	name := builderName(o.Pool, token()[:6])
	private, public, err := cloudinit.NewHostKey()
	if err != nil {
		return "", err
	}
	userData, err := cloudinit.RenderStock(cloudinit.NodeData{Hostname: name, HostKeyPrivate: private, HostKeyPublic: public,
		AuthorizedKeys: []string{o.OperatorKey}})
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "moat-builder-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// The builder is known by its name, whatever address it gets: its
	// one-time host key is the only one ssh accepts.
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(name+" "+public+"\n"), 0o600); err != nil {
		return "", err
	}
	labels := map[string]string{provider.LabelPool: o.Pool, LabelRole: RoleBuilder}
	if o.Cluster != "" {
		labels[provider.LabelCluster] = o.Cluster
	}
	log(fmt.Sprintf("creating builder %s (%s, %s, %s)", name, o.Base, o.Type, orNone(o.Region)))
	srv, cerr := o.Provider.Create(ctx, provider.CreateRequest{Name: name, Type: o.Type, Region: o.Region, Image: o.Base, UserData: userData, Labels: labels})
	defer func() {
		if derr := destroyBuilder(ctx, o.Provider, srv.ID, name, labels); derr != nil {
			err = errors.Join(err, derr)
			return
		}
		log("destroyed builder " + name)
	}()
	if cerr != nil {
		return "", fmt.Errorf("create builder %s: %w", name, cerr)
	}
	timeout := o.BootTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if srv, err = waitRunning(bctx, o.Provider, srv); err != nil {
		return "", fmt.Errorf("builder %s: %w", name, err)
	}
	opts := o.Image
	opts.Access.Dest = "root@" + srv.IPv4
	opts.ExtraSSH = append(append([]string{}, opts.ExtraSSH...),
		"-o", "UserKnownHostsFile="+known, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlias="+name, "-o", "CheckHostIP=no")
	if err := waitLogin(bctx, opts); err != nil {
		return "", fmt.Errorf("builder %s at %s: %w", name, srv.IPv4, err)
	}
	log(fmt.Sprintf("builder %s up at %s, its one-time host key checked", name, srv.IPv4))
	if err := Prepare(ctx, opts); err != nil {
		return "", fmt.Errorf("prepare builder %s: %w", name, err)
	}
	imageName := fmt.Sprintf("moat-%s-%s", o.Pool, now().UTC().Format("20060102-150405"))
	log("powering off and snapshotting the builder as " + imageName)
	if image, err = imager.Snapshot(ctx, srv.ID, imageName); err != nil {
		return "", fmt.Errorf("snapshot builder %s: %w", name, err)
	}
	log("image " + image + " (" + imageName + ")")
	return image, nil
}

func builderName(pool, suffix string) string {
	name := "moat-builder-" + pool
	if len(name) > 63-1-len(suffix) {
		name = name[:63-1-len(suffix)]
	}
	return strings.TrimRight(name, "-") + "-" + suffix
}

func orNone(s string) string {
	if s == "" {
		return "any region"
	}
	return s
}

// destroyBuilder destroys the builder: by id, and whatever server carries
// its name and labels (a create that failed after the cloud made it). It
// runs on its own context: an interrupted build still cleans up.
func destroyBuilder(ctx context.Context, p provider.Provider, id, name string, labels map[string]string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var errList []error
	ids := map[string]bool{}
	if id != "" {
		ids[id] = true
	}
	servers, err := p.List(ctx, labels)
	if err != nil {
		errList = append(errList, err)
	}
	for _, s := range servers {
		if s.Name == name {
			ids[s.ID] = true
		}
	}
	for id := range ids {
		if err := p.Destroy(ctx, id); err != nil && !errors.Is(err, provider.ErrNotFound) {
			errList = append(errList, fmt.Errorf("destroy builder %s (id %s): %w; destroy it by hand", name, id, err))
		}
	}
	return errors.Join(errList...)
}

// waitRunning polls the server until it runs with an address.
func waitRunning(ctx context.Context, p provider.Provider, srv provider.Server) (provider.Server, error) {
	delay := 200 * time.Millisecond
	for srv.Status != provider.Running || srv.IPv4 == "" {
		select {
		case <-ctx.Done():
			return srv, fmt.Errorf("not running with an address (status %s): %w", srv.Status, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 3*time.Second)
		s, err := p.Get(ctx, srv.ID)
		if err != nil && !errors.Is(err, provider.ErrNotFound) && !errors.Is(err, provider.ErrTemporary) {
			return srv, err
		}
		if err == nil {
			srv = s
		}
	}
	return srv, nil
}

// waitLogin logs in until it works: sshd starts after cloud-init wrote
// the host key and the operator's key.
func waitLogin(ctx context.Context, opts ImageOptions) error {
	r := &remote{access: opts.Access, extra: opts.ExtraSSH}
	for {
		_, err := r.runFresh(ctx, "true")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no login (%v): %w", err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// ParseOperatorKey checks the operator's authorized_keys line for a
// builder: one plain public key (a comment allowed), no options.
func ParseOperatorKey(line string) (ssh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.ContainsAny(line, "\r\n") {
		return nil, errs.Invalid("operator-key", "want one public key line (as in ~/.ssh/id_ed25519.pub)")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, errs.Invalid("operator-key", "%v", err)
	}
	if len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errs.Invalid("operator-key", "want a plain public key, without options")
	}
	return key, nil
}
