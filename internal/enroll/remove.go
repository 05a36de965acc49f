package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Remove reverses an enrolment: stops the node's containers and daemon,
// removes the master's key, the service and the binary. With purge it
// also deletes the node's data (images, container logs, settings).
func Remove(ctx context.Context, node inventory.Node, masterKey ssh.PublicKey, extraSSH []string, purge bool, log func(string)) error {
	if log == nil {
		log = func(string) {}
	}
	r, err := newRemote(node.Operator, extraSSH)
	if err != nil {
		return err
	}
	defer r.close()
	m, err := inspect(ctx, r)
	if err != nil {
		return err
	}
	if err := stopContainers(ctx, r, purge); err != nil {
		return err
	}
	if m.systemd {
		_, err = r.run(ctx, nil, "systemctl disable --now --quiet moat-node 2>/dev/null; rm -f "+UnitPath+" && systemctl daemon-reload")
	} else {
		_, err = r.run(ctx, nil, fmt.Sprintf("p=$(cat %s 2>/dev/null) && kill $p 2>/dev/null; for i in $(seq 100); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; exit 0", pidFile))
	}
	if err != nil {
		return fmt.Errorf("stop the node daemon: %w", err)
	}
	log("stopped the node daemon")
	current, err := r.run(ctx, nil, "cat "+AuthorizedKeys+" 2>/dev/null || true")
	if err != nil {
		return err
	}
	if err := r.writeFile(ctx, AuthorizedKeys, 0o600, []byte(strings.Join(withoutLinks(withoutMoat(current, masterKey)), "\n")+"\n")); err != nil {
		return err
	}
	if _, err := r.run(ctx, nil, "rm -f "+PeerKeyPath+" "+SecretsKeyPath+" && "+unmountSecrets); err != nil {
		return err
	}
	log("removed the master's, the peer and the link keys from " + AuthorizedKeys + ", and the secrets key")
	if _, err := r.run(ctx, nil, "rm -f "+BinaryPath); err != nil {
		return err
	}
	log("removed " + BinaryPath)
	if purge {
		// Empty the directories, then remove them if they are not mount
		// points (an operator may keep /var/lib/moat on its own disk).
		purge := "for d in /var/lib/moat /run/moat /etc/moat; do [ -d $d ] && find $d -mindepth 1 -maxdepth 1 -exec rm -rf {} + && (rmdir $d 2>/dev/null || true); done; rm -f " + fallbackLog
		if _, err := r.run(ctx, nil, purge); err != nil {
			return err
		}
		log("purged /var/lib/moat, /etc/moat and /run/moat")
	}
	return nil
}

// stopContainers stops every container (removes them, with purge) through
// the node's own CLI, while the daemon still runs.
func stopContainers(ctx context.Context, r *remote, purge bool) error {
	out, err := r.run(ctx, nil, "test -x "+BinaryPath+" && "+BinaryPath+" runtime ps --json 2>/dev/null || echo '[]'")
	if err != nil {
		return err
	}
	var cs []nodeapi.Container
	if json.Unmarshal([]byte(out), &cs) != nil {
		return nil // no daemon answering: nothing to stop through it
	}
	for _, c := range cs {
		verb := "stop"
		if purge {
			verb = "rm -f"
		}
		if _, err := r.run(ctx, nil, fmt.Sprintf("%s runtime %s %s", BinaryPath, verb, shellQuote(c.ID))); err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
	}
	return nil
}

// withoutLinks drops the link keys' lines (their comment is
// moat-link:ID): with the daemon gone, nothing would take them away, and a
// re-enrolled node has no link table to say which are still wanted.
func withoutLinks(lines []string) []string {
	return slices.DeleteFunc(lines, func(line string) bool {
		f := strings.Fields(line)
		return len(f) > 0 && strings.HasPrefix(f[len(f)-1], nodeapi.LinkComment(""))
	})
}
