package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// hostKeyFiles are what a host key rotation reads and writes: the ed25519
// host key sshd serves (Key, Key.pub), the one-time marker firstboot
// wrote, and how sshd is made to read the key again.
type hostKeyFiles struct {
	Key, Marker string
	Reload      func(context.Context) error
}

var defaultHostKeyFiles = hostKeyFiles{Key: nodeapi.SSHHostKey, Marker: nodeapi.HostKeyOnetime, Reload: reloadSSHD}

// One rotation at a time: the second of two calls finds the marker gone.
var hostKeyMu sync.Mutex

func (d *Daemon) handleHostKey(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.HostKeyRotate
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	old, fresh, err := rotateHostKey(r.Context(), defaultHostKeyFiles, req.Current)
	if err != nil {
		if errors.Is(err, errs.ErrForbidden) {
			d.log.Warn("host key rotation refused", "role", roleOf(r.Context()), "err", err)
		}
		return err
	}
	d.log.Info("host key rotated", "old", ssh.FingerprintSHA256(old), "new", ssh.FingerprintSHA256(fresh))
	return writeJSON(w, http.StatusOK, nodeapi.HostKeyRotated{Old: sshkey.AuthorizedKey(old), New: sshkey.AuthorizedKey(fresh)})
}

// rotateHostKey replaces the node's one-time host key with a fresh
// ed25519 key, once. It refuses, changing nothing, unless the marker
// exists and names the key sshd serves now, and the caller pinned that
// same key (current): a master can replace only a key it installed
// itself through the user data, and only once. The new key is written
// atomically (0600, its .pub 0644), sshd reloaded, then the marker
// removed; if sshd cannot be reloaded the old key and the marker are put
// back.
func rotateHostKey(ctx context.Context, f hostKeyFiles, current string) (old, fresh ssh.PublicKey, err error) {
	hostKeyMu.Lock()
	defer hostKeyMu.Unlock()
	marker, err := os.ReadFile(f.Marker)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("rotate host key: %s is absent, so this node's host key is not a one-time key from its first boot "+
			"(or was already replaced); only root on the node changes it: %w", f.Marker, errs.ErrForbidden)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rotate host key: %w", err)
	}
	oldPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("rotate host key: read the current key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(oldPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("rotate host key: %s: %w", f.Key, err)
	}
	old = signer.PublicKey()
	fp := ssh.FingerprintSHA256(old)
	if want := strings.TrimSpace(string(marker)); want != fp {
		return nil, nil, fmt.Errorf("rotate host key: %s names %q but the host key is %s: the one-time key was replaced since; refusing: %w",
			f.Marker, bound(want, 80), fp, errs.ErrForbidden)
	}
	if current != fp {
		return nil, nil, fmt.Errorf("rotate host key: the caller pinned %q but this node's one-time host key is %s: %w", bound(current, 80), fp, errs.ErrForbidden)
	}
	oldPub, err := os.ReadFile(f.Key + ".pub")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("rotate host key: %w", err)
	}
	host, _ := os.Hostname()
	private, fresh, err := sshkey.NewKey("root@" + host)
	if err != nil {
		return nil, nil, err
	}
	if err := installHostKey(f.Key, private, []byte(sshkey.AuthorizedKey(fresh)+" root@"+host+"\n")); err != nil {
		return nil, nil, fmt.Errorf("rotate host key: %w", err)
	}
	if err := f.Reload(ctx); err != nil {
		// sshd keeps serving the old key in memory; put it back on disk.
		if rerr := installHostKey(f.Key, oldPEM, oldPub); rerr != nil {
			return nil, nil, fmt.Errorf("rotate host key: reload sshd: %v; and restoring the old key failed: %w", err, rerr)
		}
		return nil, nil, fmt.Errorf("rotate host key: reload sshd: %w; the one-time key is back", err)
	}
	if err := os.Remove(f.Marker); err != nil {
		return nil, nil, fmt.Errorf("rotate host key: the key is replaced but removing %s failed: %w", f.Marker, err)
	}
	return old, fresh, nil
}

// installHostKey writes the private key (0600) and its .pub (0644, unless
// pub is empty) atomically: each into a temporary file beside it, synced,
// then renamed over.
func installHostKey(path string, private, pub []byte) error {
	if err := writeAtomic(path, private, 0o600); err != nil {
		return err
	}
	if len(pub) == 0 {
		return nil
	}
	return writeAtomic(path+".pub", pub, 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".moat-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// bound cuts a string the caller sent before it goes into a message.
func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// reloadSSHD makes the running sshd read its host keys again: through
// systemd when systemd runs sshd (a socket-activated sshd reads them at
// the next connection), else by SIGHUP to the pid in sshd's PidFile (sshd
// -T says where; on a local node /run/sshd/sshd.pid). Connections already
// open, the caller's among them, stay up.
func reloadSSHD(ctx context.Context) error {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		if _, err := exec.LookPath("systemctl"); err == nil {
			for _, u := range []string{"ssh.service", "sshd.service"} {
				if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", u).Run() == nil {
					if out, err := exec.CommandContext(ctx, "systemctl", "reload", u).CombinedOutput(); err != nil {
						return fmt.Errorf("systemctl reload %s: %v: %s", u, err, bytes.TrimSpace(out))
					}
					return nil
				}
			}
			if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", "ssh.socket").Run() == nil {
				return nil
			}
		}
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	out, err := exec.CommandContext(ctx, sshd, "-T").Output()
	if err != nil {
		return fmt.Errorf("%s -T: %w", sshd, err)
	}
	pidFile := sshdPidFile(string(out))
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("found no running sshd to reload (no systemd unit): %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s: %q is no pid", pidFile, bound(strings.TrimSpace(string(b)), 20))
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("SIGHUP sshd (pid %d from %s): %w", pid, pidFile, err)
	}
	return nil
}

// sshdPidFile is the pidfile sshd -T names, or sshd's default. Pure.
func sshdPidFile(sshdT string) string {
	for _, line := range strings.Split(sshdT, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == "pidfile" && v != "" && v != "none" {
			return strings.TrimSpace(v)
		}
	}
	return "/run/sshd.pid"
}
