package cloudinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// Paths are where Apply writes.
type Paths struct {
	SSHDir         string // the host keys: SSHDir/ssh_host_ed25519_key{,.pub}
	AuthorizedKeys string
	PeerKey        string
	OneTime        string // the one-time host key's fingerprint (see OneTimePath)
	Hostname       string
}

// OneTimePath is where Apply records the one-time host key's fingerprint:
// the node replaces that key once, over the master's first connection,
// and only while this file names the key sshd has.
const OneTimePath = nodeapi.HostKeyOnetime

// PathsUnder are the paths of a machine whose root is root ("/" on a node).
func PathsUnder(root string) Paths {
	return Paths{
		SSHDir:         filepath.Join(root, "etc/ssh"),
		AuthorizedKeys: filepath.Join(root, AuthorizedKeysPath),
		PeerKey:        filepath.Join(root, PeerKeyPath),
		OneTime:        filepath.Join(root, OneTimePath),
		Hostname:       filepath.Join(root, "etc/hostname"),
	}
}

// Apply writes d under root: see ApplyTo.
func Apply(root string, d NodeData) error { return ApplyTo(PathsUnder(root), d) }

// ApplyTo writes d: the host key (every other ssh_host_* file in the ssh
// directory removed), the authorized lines appended (those already there
// kept once), the peer key, the one-time key's fingerprint, the hostname.
// Each file but the hostname is written whole and renamed into place.
func ApplyTo(p Paths, d NodeData) error {
	fp, err := d.Fingerprint()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.SSHDir, 0o755); err != nil {
		return fmt.Errorf("apply user data: %w", err)
	}
	keyFile := filepath.Join(p.SSHDir, "ssh_host_ed25519_key")
	if err := writeFile(keyFile, []byte(d.HostKeyPrivate), 0o600); err != nil {
		return err
	}
	if err := writeFile(keyFile+".pub", []byte(d.HostKeyPublic+"\n"), 0o644); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(p.SSHDir, "ssh_host_*"))
	for _, f := range old {
		if f != keyFile && f != keyFile+".pub" {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("apply user data: %w", err)
			}
		}
	}
	if len(d.AuthorizedKeys) > 0 {
		if err := os.MkdirAll(filepath.Dir(p.AuthorizedKeys), 0o700); err != nil {
			return fmt.Errorf("apply user data: %w", err)
		}
		b, err := os.ReadFile(p.AuthorizedKeys)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("apply user data: %w", err)
		}
		text := string(b)
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		have := strings.Split(text, "\n")
		for _, line := range d.AuthorizedKeys {
			if !slices.Contains(have, line) {
				text += line + "\n"
			}
		}
		if err := writeFile(p.AuthorizedKeys, []byte(text), 0o600); err != nil {
			return err
		}
	}
	if len(d.PeerKey) > 0 {
		if err := os.MkdirAll(filepath.Dir(p.PeerKey), 0o755); err != nil {
			return fmt.Errorf("apply user data: %w", err)
		}
		if err := writeFile(p.PeerKey, d.PeerKey, 0o600); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.OneTime), 0o755); err != nil {
		return fmt.Errorf("apply user data: %w", err)
	}
	if err := writeFile(p.OneTime, []byte(fp+"\n"), 0o600); err != nil {
		return err
	}
	// In place, not renamed: /etc/hostname may be a mount point (a
	// container's, a local node's), and its directory the machine's /etc.
	if err := os.WriteFile(p.Hostname, []byte(d.Hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("apply user data: %w", err)
	}
	return nil
}

// writeFile writes a file whole under a temporary name and renames it
// into place.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".moat-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("apply user data: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("apply user data: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("apply user data: %w", err)
	}
	return nil
}
