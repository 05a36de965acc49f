package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/secret"
)

// A container's secrets live in a tmpfs of its own, mounted on the node
// at containers/ID/secrets (0700, root's), never on disk:
//
//	secrets/files/NAME   the values, 0400, the container's user's; this
//	                     directory is bind-mounted read-only at /run/secrets
//	secrets/config.json  the OCI config when a secret is also a variable
//	                     (bundle/config.json then links here)
const (
	secretsDirName = "secrets"
	secretFiles    = "files"
)

func (c *container) secretsDir() string { return filepath.Join(c.dir, secretsDirName) }

// secretKeys reads the node's secrets key file afresh: the operator
// rotates it over their own SSH while the daemon runs.
func (d *Daemon) secretKeys() (secret.Keys, error) { return readSecretKeys(d.cfg.SecretsKey) }

func readSecretKeys(file string) (secret.Keys, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("this node has no secrets key (%s): enrol it again with moat node add after moat secret init: %w", file, errs.ErrUnavailable)
	}
	if err != nil {
		return nil, err
	}
	keys, err := secret.ParseKeys(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return keys, nil
}

// imageApp is the app a signed image declares itself to be (TENANT/APP),
// the only thing a node trusts about which app a container is: the
// master's labels and names are its own to choose.
func imageApp(img image.Image) string { return img.Config.Config.Labels[secret.AppLabel] }

// openSecret opens one envelope and checks that it may go into a
// container of an image declaring app: bound to that app and to the name
// it is asked under. Anything else is refused, naming the secret, the app
// it is bound to and the container's.
func (d *Daemon) openSecret(keys secret.Keys, id, app string, m nodeapi.SecretMount) (secret.Binding, []byte, error) {
	b, value, err := secret.Open(m.Envelope, keys)
	if err != nil {
		return b, nil, errs.Invalid("secrets."+m.Name, "%v", err)
	}
	declared := app
	if declared == "" {
		declared = "no app (build it with moat image build --app TENANT/APP)"
	}
	switch {
	case b.Name != m.Name:
		err = fmt.Errorf("the envelope asked for as secret %s is secret %s of %s: refused: %w", m.Name, b.Name, b.AppRef(), errs.ErrForbidden)
	case b.AppRef() != app:
		err = fmt.Errorf("secret %s is bound to app %s, and container %s's signed image declares %s: refused: %w", b.Name, b.AppRef(), id, declared, errs.ErrForbidden)
	}
	if err != nil {
		clear(value)
		d.log.Warn("secret refused", "container", id, "secret", b.Name, "bound", b.AppRef(), "image app", app)
		return b, nil, err
	}
	return b, value, nil
}

// checkSecrets opens every secret a create asks for, before anything is
// made, and records each envelope's own version in the spec. Root on the
// node is held to the same rule: a secret goes only to its own app.
func (d *Daemon) checkSecrets(id string, spec *nodeapi.ContainerSpec, img image.Image) error {
	if len(spec.Secrets) == 0 {
		return nil
	}
	keys, err := d.secretKeys()
	if err != nil {
		return err
	}
	for i, m := range spec.Secrets {
		b, value, err := d.openSecret(keys, id, imageApp(img), m)
		if err != nil {
			return err
		}
		clear(value)
		spec.Secrets[i].Version = b.Version
	}
	return nil
}

// secretMount is where the container sees its secrets.
func secretMount(c *container) runtime.Mount {
	return runtime.Mount{Type: "bind", Source: filepath.Join(c.secretsDir(), secretFiles), Target: nodeapi.SecretsDir, ReadOnly: true}
}

// materialise puts a container's secrets in place before a run: mounts its
// tmpfs and writes the values, unless a run before this one did (a tmpfs
// lives until the container is removed or the machine reboots), and the
// config with the secret variables beside them. c.mu is held.
func (d *Daemon) materialise(ctx context.Context, c *container) error {
	ss := c.rec.Spec.Secrets
	if len(ss) == 0 {
		return nil
	}
	dir := c.secretsDir()
	files := filepath.Join(dir, secretFiles)
	if !runtime.IsMountPoint(dir) {
		if err := d.fillSecrets(c, dir, files); err != nil {
			unmountSecrets(dir)
			return err
		}
	}
	var env []string
	for _, m := range ss {
		if m.Env == "" {
			continue
		}
		v, err := os.ReadFile(filepath.Join(files, m.Name))
		if err != nil {
			return fmt.Errorf("secret %s: %w", m.Name, err)
		}
		env = append(env, m.Env+"="+string(v))
		clear(v)
	}
	if env == nil {
		return nil
	}
	cfg := c.rec.Config
	cfg.Env = append(append([]string(nil), cfg.Env...), env...)
	spec, err := runtime.Spec(cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeReplace(filepath.Join(dir, "config.json"), b, 0o600, 0, 0); err != nil {
		return err
	}
	clear(b)
	link := filepath.Join(c.bundle(), "config.json")
	os.Remove(link + ".tmp")
	if err := os.Symlink(filepath.Join(dir, "config.json"), link+".tmp"); err != nil {
		return err
	}
	return os.Rename(link+".tmp", link)
}

// fillSecrets mounts the tmpfs and writes every value into it.
func (d *Daemon) fillSecrets(c *container, dir, files string) error {
	img, err := d.images.Resolve(c.rec.ImageDigest)
	if err != nil {
		return err
	}
	keys, err := d.secretKeys()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	size := int64(64 << 10)
	for _, m := range c.rec.Spec.Secrets {
		size += 2*int64(len(m.Envelope)) + 4096
	}
	opts := fmt.Sprintf("mode=0700,size=%d", size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount the secrets tmpfs of %s: %w", c.rec.ID, err)
	}
	// 0555: the container's user passes through /run/secrets to its files.
	if err := os.Mkdir(files, 0o555); err != nil {
		return err
	}
	for _, m := range c.rec.Spec.Secrets {
		_, value, err := d.openSecret(keys, c.rec.ID, imageApp(img), m)
		if err != nil {
			return err
		}
		err = writeReplace(filepath.Join(files, m.Name), value, 0o400, int(c.rec.Config.UID), int(c.rec.Config.GID))
		clear(value)
		if err != nil {
			return fmt.Errorf("secret %s: %w", m.Name, err)
		}
	}
	return nil
}

// writeReplace writes a file beside its place, owned and moded, and
// renames it there: a process reading it sees the old or the new value,
// never half of one.
func writeReplace(path string, b []byte, mode os.FileMode, uid, gid int) error {
	tmp := path + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// unmountSecrets removes a container's secrets from memory.
func unmountSecrets(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", dir, err)
}

// UpdateSecrets replaces secrets of a container in place, each a newer
// version of one it has and declared to reload by signal, and sends the
// container's process that signal. The same rule as at create: each
// envelope must be bound to the app the container's signed image declares.
func (d *Daemon) UpdateSecrets(ctx context.Context, id string, u nodeapi.SecretsUpdate) (nodeapi.Container, error) {
	c, err := d.get(id)
	if err != nil {
		return nodeapi.Container{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	img, err := d.images.Resolve(c.rec.ImageDigest)
	if err != nil {
		return nodeapi.Container{}, err
	}
	keys, err := d.secretKeys()
	if err != nil {
		return nodeapi.Container{}, err
	}
	type change struct {
		i     int
		b     secret.Binding
		value []byte
	}
	var changes []change
	defer func() {
		for _, ch := range changes {
			clear(ch.value)
		}
	}()
	for _, m := range u.Secrets {
		i := indexOfSecret(c.rec.Spec.Secrets, m.Name)
		if i < 0 {
			return c.rec.wire(), fmt.Errorf("container %s has no secret %s: %w", id, m.Name, errs.ErrNotFound)
		}
		have := c.rec.Spec.Secrets[i]
		if have.Signal == "" {
			return c.rec.wire(), fmt.Errorf("secret %s of container %s is not reloaded in place (reload: signal): a new version replaces the container: %w", m.Name, id, errs.ErrConflict)
		}
		b, value, err := d.openSecret(keys, id, imageApp(img), m)
		if err != nil {
			return c.rec.wire(), err
		}
		changes = append(changes, change{i, b, value})
		if b.Version < have.Version {
			return c.rec.wire(), fmt.Errorf("secret %s version %d is older than the version %d container %s has: %w", m.Name, b.Version, have.Version, id, errs.ErrConflict)
		}
	}
	files := filepath.Join(c.secretsDir(), secretFiles)
	mounted := runtime.IsMountPoint(c.secretsDir())
	signals := map[string]bool{}
	for _, ch := range changes {
		s := &c.rec.Spec.Secrets[ch.i]
		if mounted {
			if err := writeReplace(filepath.Join(files, s.Name), ch.value, 0o400, int(c.rec.Config.UID), int(c.rec.Config.GID)); err != nil {
				return c.rec.wire(), fmt.Errorf("secret %s: %w", s.Name, err)
			}
		}
		s.Envelope, s.Version = u.Secrets[indexOfSecret(u.Secrets, s.Name)].Envelope, ch.b.Version
		signals[s.Signal] = true
	}
	if err := c.rec.save(c.dir); err != nil {
		return c.rec.wire(), err
	}
	d.changed(c)
	if c.rec.State == nodeapi.StateRunning {
		for sig := range signals {
			if err := d.signal(ctx, id, strings.TrimPrefix(sig, "SIG")); err != nil {
				return c.rec.wire(), err
			}
		}
	}
	d.log.Info("secrets replaced in place", "container", id, "secrets", len(changes))
	return c.rec.wire(), nil
}

func indexOfSecret(ss []nodeapi.SecretMount, name string) int {
	for i, s := range ss {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func (d *Daemon) handleUpdateSecrets(w http.ResponseWriter, r *http.Request) error {
	var u nodeapi.SecretsUpdate
	if err := nodeapi.Decode(r.Body, &u); err != nil {
		return err
	}
	if err := u.Validate(); err != nil {
		return err
	}
	c, err := d.UpdateSecrets(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// wireSpec is a container's spec as the API reports it: its secrets'
// names and versions without their envelopes, which only the create and
// update requests need to carry.
func wireSpec(s nodeapi.ContainerSpec) nodeapi.ContainerSpec {
	if len(s.Secrets) == 0 {
		return s
	}
	ss := make([]nodeapi.SecretMount, len(s.Secrets))
	for i, m := range s.Secrets {
		m.Envelope = nil
		ss[i] = m
	}
	s.Secrets = ss
	return s
}
