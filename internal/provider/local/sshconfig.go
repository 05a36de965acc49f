package local

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteSSHConfig writes dir/ssh_config and dir/known_hosts, so the
// operator's ssh (and node add, node rm, debug) reaches the nodes as n1,
// n2, ... as root with the identity file, host keys checked. It returns
// the config's path.
func (c *Cluster) WriteSSHConfig(dir, identity string) (string, error) {
	var cfg, known bytes.Buffer
	for _, n := range c.Nodes {
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n", n.Name, n.Addr)
		fmt.Fprintf(&known, "%s %s\n", n.Addr, n.HostKey)
	}
	fmt.Fprintf(&cfg, "Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
		identity, filepath.Join(dir, "known_hosts"))
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), known.Bytes(), 0o600); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ssh_config")
	return path, os.WriteFile(path, cfg.Bytes(), 0o600)
}
