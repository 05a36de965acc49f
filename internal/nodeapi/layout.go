package nodeapi

// Where moat lives on a node. Enrolment installs these, the daemon and the
// gate read them, the local provider mounts them and tests look at them:
// one list keeps them agreeing.
const (
	BinaryPath     = "/usr/local/bin/moat"
	StateDir       = "/var/lib/moat" // images, containers, logs, the SFTP inbox
	Socket         = "/run/moat/node.sock"
	ConfigFile     = "/etc/moat/node.conf"
	AllowedSigners = "/etc/moat/allowed_signers"
	RevokedSigners = "/etc/moat/revoked_signers"
	PeerKey        = "/etc/moat/peer_ed25519" // what this node fetches from peers with
	AuthorizedKeys = "/root/.ssh/authorized_keys"
)
