package enroll

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// unit runs the daemon under systemd. KillMode=process: containers belong
// to their shims, which live in this unit's cgroup; stopping or restarting
// the daemon must not kill them.
const unit = `[Unit]
Description=moat node daemon
After=network-online.target

[Service]
ExecStart=/usr/local/bin/moat node serve
Restart=always
RestartSec=1
KillMode=process
Delegate=yes
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
`

// Without systemd the daemon is started detached and logs here; it is not
// restarted at boot (see the README: add it to the machine's init).
const fallbackLog = "/var/log/moat-node.log"

const pidFile = "/run/moat/node.pid"

func upload(client *sftp.Client, src, dst string, size int64, progress func(int64) io.Writer) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := client.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	var r io.Reader = in
	if progress != nil {
		r = io.TeeReader(in, progress(size))
	}
	if _, err := out.ReadFrom(r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// masterKeyLine pins the master's key to the gate: restrict turns off
// forwarding, agent, X11 and pty; command= makes the gate the only program
// this key can run.
func masterKeyLine(key ssh.PublicKey) string {
	return nodeapi.AuthorizedLine(BinaryPath, nodeapi.RoleMaster, sshkey.AuthorizedKey(key))
}

// peerKeyLine pins the peer key (other nodes fetching blobs) to the gate's
// peer role, which reads blobs and nothing else.
func peerKeyLine(key ssh.PublicKey) string {
	return nodeapi.AuthorizedLine(BinaryPath, nodeapi.RolePeer, sshkey.AuthorizedKey(key))
}

// installKeys puts the master's line, and the peer key's if there is one,
// in root's authorized_keys, replacing earlier ones, and keeps every
// other line. The peer's private key goes to PeerKeyPath, for the daemon.
func installKeys(ctx context.Context, r *remote, opts Options) error {
	current, err := r.run(ctx, nil, "cat "+AuthorizedKeys+" 2>/dev/null || true")
	if err != nil {
		return err
	}
	lines := withoutMoat(current, opts.MasterKey, opts.PeerPublic)
	lines = append(lines, masterKeyLine(opts.MasterKey))
	if opts.PeerPublic != nil {
		lines = append(lines, peerKeyLine(opts.PeerPublic))
		if err := r.writeFile(ctx, PeerKeyPath, 0o600, opts.PeerKey); err != nil {
			return fmt.Errorf("install the peer key: %w", err)
		}
	}
	return r.writeFile(ctx, AuthorizedKeys, 0o600, []byte(strings.Join(lines, "\n")+"\n"))
}

// withoutMoat drops the lines of moat's keys: these, or older ones (same
// comment), so a re-enrolment after a key change leaves one of each.
func withoutMoat(authorizedKeys string, keys ...ssh.PublicKey) []string {
	var blobs []string
	for _, k := range keys {
		if k != nil {
			blobs = append(blobs, sshkey.AuthorizedKey(k))
		}
	}
	var keep []string
	for _, line := range strings.Split(authorizedKeys, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasSuffix(t, " "+nodeapi.KeyComment(nodeapi.RoleMaster)) || strings.HasSuffix(t, " "+nodeapi.KeyComment(nodeapi.RolePeer)) ||
			slices.ContainsFunc(blobs, func(b string) bool { return strings.Contains(t, b) }) {
			continue
		}
		keep = append(keep, line)
	}
	return keep
}

// startDaemon installs and starts the node daemon's service, restarting it
// when the binary changed.
func startDaemon(ctx context.Context, r *remote, systemd, binaryChanged bool) (string, error) {
	if systemd {
		old, _ := r.run(ctx, nil, "cat "+UnitPath+" 2>/dev/null || true")
		if old != unit {
			if err := r.writeFile(ctx, UnitPath, 0o644, []byte(unit)); err != nil {
				return "", err
			}
		}
		verb := "start"
		if binaryChanged || old != unit {
			verb = "restart"
		}
		if _, err := r.run(ctx, nil, "systemctl daemon-reload && systemctl enable --quiet moat-node && systemctl "+verb+" moat-node"); err != nil {
			return "", err
		}
		return "running as systemd unit moat-node", nil
	}
	running, _ := r.run(ctx, nil, fmt.Sprintf("p=$(cat %s 2>/dev/null) && kill -0 $p 2>/dev/null && echo $p || true", pidFile))
	if pid := strings.TrimSpace(running); pid != "" {
		if !binaryChanged {
			return "already running (no systemd: started detached)", nil
		}
		if _, err := r.run(ctx, nil, fmt.Sprintf("kill %s; for i in $(seq 100); do kill -0 %s 2>/dev/null || exit 0; sleep 0.1; done; exit 1", pid, pid)); err != nil {
			return "", fmt.Errorf("stop the old node daemon (pid %s): %w", pid, err)
		}
	}
	cmd := fmt.Sprintf("setsid -f %s node serve >>%s 2>&1 </dev/null", BinaryPath, fallbackLog)
	if _, err := r.run(ctx, nil, cmd); err != nil {
		return "", err
	}
	return "started detached, logging to " + fallbackLog + " (no systemd: add it to the machine's init to survive reboots)", nil
}

// readHostKey reads the machine's host key over the operator's connection,
// which ssh has already verified against known_hosts: the key the master
// pins is the one the operator trusts.
func readHostKey(ctx context.Context, r *remote) (ssh.PublicKey, error) {
	out, err := r.run(ctx, nil, "cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || cat /etc/ssh/ssh_host_ecdsa_key.pub 2>/dev/null || cat /etc/ssh/ssh_host_rsa_key.pub")
	if err != nil {
		return nil, fmt.Errorf("read the host key: %w", err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return sshkey.ParsePublicKey(line)
}
