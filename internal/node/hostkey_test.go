package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/sshkey"
)

// TestRotateHostKey: the one-time key is replaced once, only when the
// marker names it and the caller pinned it; every refusal leaves the key,
// its .pub and the marker byte for byte as they were; a failed reload
// puts the old key and the marker back.
func TestRotateHostKey(t *testing.T) {
	other, err := sshkey.GenerateKey(filepath.Join(t.TempDir(), "other"), "other")
	if err != nil {
		t.Fatal(err)
	}
	otherFP := ssh.FingerprintSHA256(other.PublicKey())
	tests := []struct {
		name      string
		marker    func(fp string) (string, bool) // content, present
		current   func(fp string) string
		reloadErr error
		wantErr   error // nil: rotated
	}{
		{"one-time key", func(fp string) (string, bool) { return fp + "\n", true }, same, nil, nil},
		{"no marker (enrolled by hand)", func(string) (string, bool) { return "", false }, same, nil, errs.ErrForbidden},
		{"stale marker", func(string) (string, bool) { return otherFP + "\n", true }, same, nil, errs.ErrForbidden},
		{"empty marker", func(string) (string, bool) { return "", true }, same, nil, errs.ErrForbidden},
		{"caller pinned another key", func(fp string) (string, bool) { return fp, true }, func(string) string { return otherFP }, nil, errs.ErrForbidden},
		{"caller pinned nothing", func(fp string) (string, bool) { return fp, true }, func(string) string { return "" }, nil, errs.ErrForbidden},
		{"sshd not reloaded", func(fp string) (string, bool) { return fp, true }, same, errors.New("no sshd"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "ssh_host_ed25519_key")
			signer, err := sshkey.GenerateKey(key, "one-time")
			if err != nil {
				t.Fatal(err)
			}
			fp := ssh.FingerprintSHA256(signer.PublicKey())
			marker := filepath.Join(dir, "hostkey.onetime")
			if content, ok := tt.marker(fp); ok {
				os.WriteFile(marker, []byte(content), 0o600)
			}
			reloads := 0
			f := hostKeyFiles{Key: key, Marker: marker, Reload: func(context.Context) error { reloads++; return tt.reloadErr }}
			before := snapshotDir(t, dir)
			old, fresh, err := rotateHostKey(context.Background(), f, tt.current(fp))
			if tt.wantErr != nil || tt.reloadErr != nil {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if after := snapshotDir(t, dir); !equalMaps(before, after) {
					t.Errorf("a refusal changed files:\nbefore %v\nafter  %v", before, after)
				}
				if tt.wantErr != nil && reloads != 0 {
					t.Errorf("a refusal reloaded sshd")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ssh.FingerprintSHA256(old) != fp || ssh.FingerprintSHA256(fresh) == fp || reloads != 1 {
				t.Errorf("old %s new %s reloads %d; want old %s, a new key, one reload", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(fresh), reloads, fp)
			}
			got, err := sshkey.LoadSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			if !equalKeys(got.PublicKey(), fresh) {
				t.Error("the key on disk is not the one returned")
			}
			pub, _ := os.ReadFile(key + ".pub")
			if k, err := sshkey.ParsePublicKey(string(pub)); err != nil || !equalKeys(k, fresh) {
				t.Errorf(".pub %q is not the new key (%v)", pub, err)
			}
			if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key mode: %v %v", fi.Mode(), err)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("marker still there: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*moat-*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
			// Once: the same call again is refused and changes nothing.
			before = snapshotDir(t, dir)
			if _, _, err := rotateHostKey(context.Background(), f, ssh.FingerprintSHA256(fresh)); !errors.Is(err, errs.ErrForbidden) {
				t.Errorf("second rotation: %v, want refused", err)
			}
			if after := snapshotDir(t, dir); !equalMaps(before, after) {
				t.Error("the second, refused rotation changed files")
			}
		})
	}
}

func same(fp string) string { return fp }

func equalKeys(a, b ssh.PublicKey) bool { return string(a.Marshal()) == string(b.Marshal()) }

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fi, _ := e.Info()
		m[e.Name()] = fi.Mode().String() + " " + string(b)
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSSHDPidFile(t *testing.T) {
	tests := []struct{ in, want string }{
		{"port 22\npidfile /run/sshd/sshd.pid\n", "/run/sshd/sshd.pid"},
		{"pidfile /var/run/sshd.pid", "/var/run/sshd.pid"},
		{"port 22\n", "/run/sshd.pid"},
		{"pidfile none\n", "/run/sshd.pid"},
		{"xpidfile /x\n", "/run/sshd.pid"},
	}
	for _, tt := range tests {
		if got := sshdPidFile(tt.in); got != tt.want {
			t.Errorf("sshdPidFile(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
