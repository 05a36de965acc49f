package nodeapi

import (
	"context"
	"net/http"
)

// Where a pool node keeps its first boot's state. Firstboot installs the
// one-time host key the master's user data carried as SSHHostKey and names
// its fingerprint in HostKeyOnetime; POST /v1/hostkey replaces that key,
// once, and removes the file.
const (
	SSHHostKey = "/etc/ssh/ssh_host_ed25519_key" // and .pub beside it
	// HostKeyOnetime holds one line: ssh.FingerprintSHA256 of the one-time
	// host key (e.g. "SHA256:..."), root's, 0600.
	HostKeyOnetime = "/etc/moat/hostkey.onetime"
	// FirstbootDone says firstboot applied the user data: it never
	// applies any again.
	FirstbootDone = "/var/lib/moat/firstboot.done"
)

// HostKeyRotate asks a node to replace its one-time host key. Current is
// the fingerprint (SHA256:...) of the host key the caller pinned to reach
// the node: the node refuses unless it is the one-time key it serves.
type HostKeyRotate struct {
	Current string `json:"current"`
}

// HostKeyRotated is the node's new host key, in authorized_keys format,
// and the one it replaced.
type HostKeyRotated struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// RotateHostKey makes the node replace its one-time host key (fingerprint
// current) with one it generates, and returns the new key for the caller
// to pin. A node refuses (ErrForbidden) when its key is not a one-time
// key, is another than current, or was already replaced.
func (c *Client) RotateHostKey(ctx context.Context, current string) (HostKeyRotated, error) {
	var out HostKeyRotated
	return out, c.Call(ctx, http.MethodPost, "/v1/hostkey", HostKeyRotate{Current: current}, &out)
}
