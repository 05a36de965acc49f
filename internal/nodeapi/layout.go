package nodeapi

import (
	"path"
	"path/filepath"
	"strings"
)

// Where moat lives on a node. Enrolment installs these, the daemon and the
// gate read them, the local provider mounts them and tests look at them:
// one list keeps them agreeing.
const (
	BinaryPath     = "/usr/local/bin/moat"
	StateDir       = "/var/lib/moat" // images, containers, logs, the SFTP inbox: see Layout
	Socket         = "/run/moat/node.sock"
	ConfigFile     = "/etc/moat/node.conf"
	AllowedSigners = "/etc/moat/allowed_signers"
	RevokedSigners = "/etc/moat/revoked_signers"
	PeerKey        = "/etc/moat/peer_ed25519" // what this node fetches from peers with
	AuthorizedKeys = "/root/.ssh/authorized_keys"
)

// Layout is where a node keeps its state under Root (StateDir, unless
// the daemon is told otherwise): the daemon writes there, the gate serves
// the inbox and the stored blobs from there, and the master uploads into
// the inbox.
type Layout struct{ Root string }

// The inbox, as the gate's SFTP server (rooted at the inbox) shows it:
// one directory of blobs named sha256-HEX, each written as
// sha256-HEX.part first and renamed when whole.
const (
	InboxBlobDir    = "blobs"
	InboxBlobPrefix = "sha256-"
	PartSuffix      = ".part"
)

// InboxBlobName is the file name of the blob with digest sha256:HEX in
// the inbox: sha256-HEX.
func InboxBlobName(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 {
		digest = digest[i+1:]
	}
	return InboxBlobPrefix + digest
}

// InboxBlobPath is the blob's path relative to the inbox: the name the
// gate's SFTP server knows it by.
func InboxBlobPath(digest string) string { return path.Join(InboxBlobDir, InboxBlobName(digest)) }

// Inbox is where the master uploads blobs and peers' blobs are fetched to.
func (l Layout) Inbox() string { return filepath.Join(l.Root, "inbox") }

// InboxBlobs is the inbox's one directory.
func (l Layout) InboxBlobs() string { return filepath.Join(l.Inbox(), InboxBlobDir) }

// InboxBlob is where the blob with digest sha256:HEX arrives.
func (l Layout) InboxBlob(digest string) string {
	return filepath.Join(l.InboxBlobs(), InboxBlobName(digest))
}

// Images is the node's image store.
func (l Layout) Images() string { return filepath.Join(l.Root, "images") }

// Containers holds one directory per container.
func (l Layout) Containers() string { return filepath.Join(l.Root, "containers") }

// Container is the directory of container id: its record and logs.
func (l Layout) Container(id string) string { return filepath.Join(l.Containers(), id) }

// Runc is runc's state directory (runc --root), unless the daemon is
// told otherwise.
func (l Layout) Runc() string { return filepath.Join(l.Root, "runc") }

// Volumes is where bind mounts may come from, unless the daemon is told
// otherwise.
func (l Layout) Volumes() string { return filepath.Join(l.Root, "volumes") }

// Keep is the keep list the master last sent.
func (l Layout) Keep() string { return filepath.Join(l.Root, "keep.json") }

// Lease is the master's lease as last renewed.
func (l Layout) Lease() string { return filepath.Join(l.Root, "lease.json") }

// Links is the link table the master last sent (private keys included:
// 0600), so a restarted daemon opens its listeners before the master is
// back.
func (l Layout) Links() string { return filepath.Join(l.Root, "links.json") }
