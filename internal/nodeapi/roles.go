package nodeapi

import (
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
)

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
