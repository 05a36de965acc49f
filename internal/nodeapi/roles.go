package nodeapi

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Callers of the node API. Root is whoever can open the daemon's own
// socket: root on the node, the operator. Every other role reaches the
// daemon through the gate, on a socket of its own beside the daemon's, so a
// role is never claimed by a request, only held by the key whose forced
// command chose the socket.
const (
	RoleRoot   = "root"
	RoleMaster = "master"
	// RolePeer is the key other nodes fetch blobs with; its sessions
	// never reach the daemon.
	RolePeer = "peer"
)

// AuthorizedLine is the authorized_keys line that pins a key (in
// authorized_keys form) to the gate in a role. restrict turns off
// forwarding, ptys, agents and X11; the forced command is all the key can
// run, whatever the client asks. The comment, KeyComment(role), marks the
// line as moat's, so enrolling again replaces it and keeps the operator's.
func AuthorizedLine(binary, role, key string) string {
	return fmt.Sprintf(`restrict,command="%s gate --as %s" %s %s`, binary, role, key, KeyComment(role))
}

// KeyComment is the comment on moat's authorized_keys line for a role.
func KeyComment(role string) string { return "moat-" + role }

// RoleSocket is the socket the gate relays a role's sessions to: for the
// daemon's socket /run/moat/node.sock and the master, /run/moat/node-master.sock.
// Root's is the daemon's own.
func RoleSocket(socket, role string) string {
	if role == RoleRoot || role == "" {
		return socket
	}
	base := strings.TrimSuffix(filepath.Base(socket), ".sock")
	return filepath.Join(filepath.Dir(socket), base+"-"+role+".sock")
}
