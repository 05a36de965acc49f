package node_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/testcluster"
)

// secretsNode is a node with a secrets key and two images, each signed
// config declaring its app: probe-a:1 is default/a, probe-b:1 default/b.
func secretsNode(t *testing.T) (*testcluster.Node, secret.Keys) {
	t.Helper()
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "--secrets-key", keyFile)
	importFile(t, n, testcluster.ProbeImage(t, "probe-a:1", "--label", secret.AppLabel+"=default/a"))
	importFile(t, n, testcluster.ProbeImage(t, "probe-b:1", "--label", secret.AppLabel+"=default/b"))
	return n, keys
}

func seal(t *testing.T, keys secret.Keys, app, name string, version int, value string) []byte {
	t.Helper()
	env, err := secret.Seal(secret.Binding{Tenant: "default", App: app, Name: name, Version: version}, []byte(value), keys.Sealing())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestSecretsBoundToTheImagesApp: the master's key asks for app a's secret
// in a container of b's image, or under another name: refused, nothing
// made. In a's own container it is a file of its user's, 0400, in memory.
func TestSecretsBoundToTheImagesApp(t *testing.T) {
	n, keys := secretsNode(t)
	master := nodeapi.UnixClient(nodeapi.RoleSocket(n.Socket, nodeapi.RoleMaster))
	ctx := context.Background()
	const value = "plaintext-7f3a9c-never-on-disk"
	env := seal(t, keys, "a", "db", 1, value)

	for name, spec := range map[string]nodeapi.ContainerSpec{
		"other-app":  {Name: "b1", Image: "probe-b:1", Secrets: []nodeapi.SecretMount{{Name: "db", Envelope: env}}},
		"other-name": {Name: "a0", Image: "probe-a:1", Secrets: []nodeapi.SecretMount{{Name: "token", Envelope: env}}},
		"no-app":     {Name: "p0", Image: probeImage, Secrets: []nodeapi.SecretMount{{Name: "db", Envelope: env}}},
	} {
		_, err := master.CreateContainer(ctx, spec, true)
		if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), "default/a") {
			t.Errorf("%s: %v; want forbidden naming default/a", name, err)
		}
		if name == "other-app" && (err == nil || !strings.Contains(err.Error(), "declares default/b")) {
			t.Errorf("%s: %v; want it to name the container's app", name, err)
		}
		if _, err := n.Client.Container(ctx, spec.Name); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("%s: the refused container exists: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(n.Root, "containers", spec.Name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the refused container left a directory: %v", name, err)
		}
	}

	c, err := master.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "a1", Image: "probe-a:1", Cmd: []string{"serve", ":8080"},
		Secrets: []nodeapi.SecretMount{{Name: "db", Envelope: env, Env: "DB_PASSWORD"}, {Name: "tls", Envelope: seal(t, keys, "a", "tls", 1, "cert-v1"), Signal: "SIGHUP"}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, n, c.ID, "serving on")
	c, _ = n.Client.Container(ctx, "a1")
	file := filepath.Join("/proc", strconv.Itoa(c.Pid), "root", "run", "secrets", "db")
	b, err := os.ReadFile(file)
	if err != nil || string(b) != value {
		t.Fatalf("/run/secrets/db in the container: %q %v", b, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil || st.Mode&0o7777 != 0o400 || st.Uid != 65534 {
		t.Errorf("/run/secrets/db: mode %o uid %d (%v), want 0400 and the container's user 65534", st.Mode&0o7777, st.Uid, err)
	}
	environ, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.Pid), "environ"))
	if !bytes.Contains(environ, []byte("DB_PASSWORD="+value)) {
		t.Errorf("the spec asked for DB_PASSWORD; the process's environment lacks it")
	}
	if err := os.WriteFile(file, []byte("x"), 0o600); err == nil {
		t.Errorf("/run/secrets/db is writable")
	}
	if got := c.Spec.Secrets; len(got) != 2 || got[0].Envelope != nil || got[0].Version != 1 {
		t.Errorf("the container's report carries %+v; want names and versions without envelopes", got)
	}

	t.Run("replaced in place and signalled", func(t *testing.T) {
		tls := filepath.Join("/proc", strconv.Itoa(c.Pid), "root", "run", "secrets", "tls")
		if _, err := master.UpdateSecrets(ctx, "a1", nodeapi.SecretsUpdate{Secrets: []nodeapi.SecretMount{{Name: "tls", Envelope: seal(t, keys, "a", "tls", 2, "cert-v2")}}}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(tls); string(b) != "cert-v2" {
			t.Errorf("tls after the update: %q", b)
		}
		waitLog(t, n, "a1", "got SIGHUP")
		for what, u := range map[string]nodeapi.SecretMount{
			"older":     {Name: "tls", Envelope: seal(t, keys, "a", "tls", 1, "cert-v1")},
			"other app": {Name: "tls", Envelope: seal(t, keys, "b", "tls", 3, "evil")},
			"restarts":  {Name: "db", Envelope: seal(t, keys, "a", "db", 2, "v2")},
		} {
			if _, err := master.UpdateSecrets(ctx, "a1", nodeapi.SecretsUpdate{Secrets: []nodeapi.SecretMount{u}}); err == nil {
				t.Errorf("%s: replaced", what)
			}
		}
		if b, _ := os.ReadFile(tls); string(b) != "cert-v2" {
			t.Errorf("tls after refused updates: %q", b)
		}
	})

	t.Run("nowhere on disk", func(t *testing.T) {
		secretsDir := filepath.Join(n.Root, "containers", "a1", "secrets")
		filepath.WalkDir(n.Root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && path == secretsDir {
				var sfs syscall.Statfs_t
				if syscall.Statfs(path, &sfs) != nil || sfs.Type != 0x01021994 { // TMPFS_MAGIC
					t.Errorf("%s is not a tmpfs", path)
				}
				return fs.SkipDir // memory, not disk
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(value)) {
				t.Errorf("%s holds the plaintext", path)
			}
			return nil
		})
		if !strings.Contains(n.Log(), "secret refused") || strings.Contains(n.Log(), value) {
			t.Errorf("the node's log: want the refusals, never the value")
		}
	})

	if err := master.RemoveContainer(ctx, "a1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(n.Root, "containers", "a1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a removed container's secrets remain: %v", err)
	}
}
