// Package gate is the forced command a node's authorized_keys pins keys
// to: `moat gate --as ROLE`. It reads SSH_ORIGINAL_COMMAND and allows
// exactly what the role may do. The master's key: rpc (relay the session
// to the node daemon's API), sftp (confined to the upload inbox) and dial
// CONTAINER:PORT (pipe the session to a declared container port). The
// peer key other nodes fetch images with: blob DIGEST [OFFSET [SIZE]]
// (read one blob, as it arrives if SIZE is given). A link key, pinned
// with --to TARGET:PORT: mux (a yamux session whose streams each reach
// port PORT of a running container of app TARGET on this node, and no
// other). Everything else — a login shell, any other command, scp,
// another subsystem — is refused with one line on stderr and a non-zero
// exit. The gate never runs a shell and writes nothing but protocol on
// stdout.
package gate

import (
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Verbs the gate knows.
const (
	VerbRPC  = "rpc"
	VerbSFTP = "sftp"
	VerbDial = "dial"
	VerbBlob = "blob"
	VerbMux  = nodeapi.LinkMux
)

// Roles.
const (
	RoleMaster = nodeapi.RoleMaster
	RolePeer   = nodeapi.RolePeer
	RoleLink   = nodeapi.RoleLink
)

// roles says which verbs each key role may use.
var roles = map[string][]string{
	RoleMaster: {VerbRPC, VerbSFTP, VerbDial},
	RolePeer:   {VerbBlob},
	RoleLink:   {VerbMux},
}

// allowed says what a role may run, for refusals.
var allowed = map[string]string{
	RoleMaster: "this key may only run: rpc, sftp, dial CONTAINER:PORT",
	RolePeer:   "this key may only run: blob sha256:HEX [OFFSET [SIZE]]",
	RoleLink:   "this key may only run: mux",
}

// Request is a parsed, allowed gate command.
type Request struct {
	Role      string // whose key: the gate relays to this role's socket
	Verb      string
	Container string // dial
	Port      int    // dial; mux: the one port its streams reach
	App       string // mux: the app whose containers its streams reach
	Digest    string // blob: sha256:<64 hex>
	Offset    int64  // blob: where to start
	Size      int64  // blob: its size, to follow it while it arrives; -1 unknown
}

// Config is where the gate finds the node's parts.
type Config struct {
	Socket    string // node daemon API socket (root's; each role has its own beside it)
	Inbox     string // SFTP root
	Blobs     string // the image store's blobs/sha256 directory
	MaxUpload int64
}

// Parse checks the SSH command against the role and, for a link key, the
// TARGET:PORT its line pins it to (to; empty for every other role). Pure.
func Parse(role, to, command string) (Request, error) {
	verbs, ok := roles[role]
	if !ok {
		return Request{}, fmt.Errorf("unknown role %q: %w", role, errs.ErrForbidden)
	}
	app, port, err := parseTo(role, to)
	if err != nil {
		return Request{}, err
	}
	fields := strings.Fields(command)
	if len(fields) == 0 {
		return Request{}, fmt.Errorf("interactive login refused: %s: %w", allowed[role], errs.ErrForbidden)
	}
	var req Request
	switch {
	case command == VerbRPC:
		req.Verb = VerbRPC
	case command == VerbMux:
		req = Request{Verb: VerbMux, App: app, Port: port}
	case command == VerbSFTP || isSFTPSubsystem(fields):
		req.Verb = VerbSFTP
	case fields[0] == VerbDial && len(fields) == 2:
		c, p, err := parseTarget(fields[1])
		if err != nil {
			return Request{}, err
		}
		req = Request{Verb: VerbDial, Container: c, Port: p}
	case fields[0] == VerbBlob && len(fields) >= 2 && len(fields) <= 4:
		d, off, size, err := parseBlob(fields[1:])
		if err != nil {
			return Request{}, err
		}
		req = Request{Verb: VerbBlob, Digest: d, Offset: off, Size: size}
	default:
		return Request{}, fmt.Errorf("command refused: %s: %s: %w", quote(command), allowed[role], errs.ErrForbidden)
	}
	for _, v := range verbs {
		if v == req.Verb {
			req.Role = role
			return req, nil
		}
	}
	return Request{}, fmt.Errorf("role %s may not use %s: %s: %w", role, req.Verb, allowed[role], errs.ErrForbidden)
}

// isSFTPSubsystem recognises the command sshd substitutes for the sftp
// subsystem under a forced command: its configured sftp-server or
// internal-sftp, possibly with flags.
func isSFTPSubsystem(fields []string) bool {
	base := path.Base(fields[0])
	if base != "sftp-server" && base != "internal-sftp" {
		return false
	}
	for _, f := range fields[1:] {
		if !strings.HasPrefix(f, "-") && !isFlagValue(f) {
			return false
		}
	}
	return true
}

// isFlagValue allows the values of sftp-server's own flags (-l INFO,
// -f AUTH, -u 022).
func isFlagValue(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseTo checks --to: required for the link role, whose key it pins to
// one app's port, and refused for every other role, whose keys it would
// not confine.
func parseTo(role, to string) (string, int, error) {
	if role != RoleLink {
		if to != "" {
			return "", 0, fmt.Errorf("--to is for the %s role only, not %s: %w", RoleLink, role, errs.ErrInvalid)
		}
		return "", 0, nil
	}
	app, portStr, ok := strings.Cut(to, ":")
	port, err := strconv.Atoi(portStr)
	if !ok || err != nil || port < 1 || port > 65535 || !nodeapi.ValidName(app) || portStr != strconv.Itoa(port) {
		return "", 0, fmt.Errorf("--to %s: want TARGET:PORT, an app and a port 1-65535: %w", quote(to), errs.ErrInvalid)
	}
	return app, port, nil
}

func parseTarget(s string) (string, int, error) {
	name, portStr, ok := strings.Cut(s, ":")
	port, err := strconv.Atoi(portStr)
	if !ok || err != nil || port < 1 || port > 65535 || !nodeapi.ValidName(name) {
		return "", 0, fmt.Errorf("dial %s: want CONTAINER:PORT: %w", quote(s), errs.ErrInvalid)
	}
	return name, port, nil
}

// parseBlob reads "sha256:<64 lowercase hex> [OFFSET [SIZE]]": nothing in
// it can name a path but the one blob.
func parseBlob(args []string) (d string, off, size int64, err error) {
	hex, ok := strings.CutPrefix(args[0], "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", 0, 0, fmt.Errorf("blob %s: want sha256:<64 hex digits>: %w", quote(args[0]), errs.ErrInvalid)
	}
	size = -1
	for i, what := range []string{"offset", "size"} {
		if len(args) <= i+1 {
			break
		}
		n, err := strconv.ParseInt(args[i+1], 10, 64)
		if err != nil || n < 0 || args[i+1] != strconv.FormatInt(n, 10) {
			return "", 0, 0, fmt.Errorf("blob %s %s: want a number of bytes: %w", what, quote(args[i+1]), errs.ErrInvalid)
		}
		if i == 0 {
			off = n
		} else {
			size = n
		}
	}
	if size >= 0 && off > size {
		return "", 0, 0, fmt.Errorf("blob offset %d is past its size %d: %w", off, size, errs.ErrInvalid)
	}
	return args[0], off, size, nil
}

// quote keeps an attacker's command from writing control characters to the
// operator's terminal, and bounds its length.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// Run serves an allowed request on the session's stdin and stdout.
func Run(ctx context.Context, cfg Config, req Request, stdin io.Reader, stdout io.Writer) error {
	rw := sessionRW{stdin, stdout}
	// The daemon serves each role on a socket of its own and allows it
	// only that role's routes: the rpc session cannot claim more.
	socket := nodeapi.RoleSocket(cfg.Socket, req.Role)
	switch req.Verb {
	case VerbRPC:
		return relayRPC(ctx, socket, rw)
	case VerbSFTP:
		return ServeSFTP(rw, cfg.Inbox, cfg.MaxUpload)
	case VerbDial:
		return dial(ctx, socket, req.Container, req.Port, rw)
	case VerbMux:
		// The link role has no socket of its own: the gate looks containers
		// up as the master would and enforces the role's limits itself.
		return serveMux(ctx, nodeapi.RoleSocket(cfg.Socket, RoleMaster), req.App, req.Port, rw)
	case VerbBlob:
		if req.Size >= 0 {
			return followBlob(ctx, cfg.Blobs, cfg.Inbox, req.Digest, req.Offset, req.Size, stdout)
		}
		return sendBlob(cfg.Blobs, cfg.Inbox, req.Digest, req.Offset, stdout)
	}
	return fmt.Errorf("verb %q: %w", req.Verb, errs.ErrForbidden)
}

// sessionRW is the SSH session as one stream.
type sessionRW struct {
	io.Reader
	io.Writer
}

func (s sessionRW) Close() error {
	if c, ok := s.Writer.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
