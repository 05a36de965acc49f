package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/audit"
	"github.com/moatcloud/moat/internal/hardening"
)

// dropInFor is the drop-in enrolment installs for a node's sshd.
func dropInFor(f hardening.Facts) string { return hardening.Text(hardening.Settings(f)) }

// sshdBin finds the node's sshd, often not on a non-login PATH.
const sshdBin = `sshd=$(command -v sshd || echo /usr/sbin/sshd)`

// reloadSSHD makes the running sshd read its configuration again: through
// systemd when it runs sshd (a socket-activated sshd reads it at the next
// connection), else by SIGHUP to the pid in its PidFile. It fails when it
// finds no sshd to reload.
const reloadSSHD = `reload_sshd() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		for u in ssh sshd; do
			if systemctl is-active --quiet "$u.service"; then systemctl reload "$u.service"; return; fi
		done
		systemctl is-active --quiet ssh.socket && return 0
	fi
	pf=$("$sshd" -T 2>/dev/null | awk '$1=="pidfile"{print $2}')
	if [ -n "$pf" ] && [ -f "$pf" ] && kill -HUP "$(cat "$pf")"; then return 0; fi
	echo "found no running sshd to reload (no systemd unit, pid file ${pf:-none})" >&2
	return 1
}`

// hardenSSHD installs moat's sshd drop-in through the operator's own
// connection, and keeps it only if sshd accepts it and a new login as the
// operator works afterwards. Step by step:
//
//  1. read what the node's sshd offers now (sshd -T) and its host keys;
//  2. back up sshd_config and any earlier drop-in, write the new one (and
//     an Include of sshd_config.d first, if sshd_config has none), check
//     with sshd -t, restoring the backup at once if it fails;
//  3. arm a dead man's switch on the node that restores the backup in a
//     minute unless told otherwise, then reload sshd;
//  4. log in again on a new connection (not the multiplexed one, which
//     survives the reload); on success that login disarms the switch; on
//     failure the backup is restored over the connection still open, and
//     the login is tried again.
//
// The operator can always get back in: through the held connection, or the
// switch if that one dies too.
func hardenSSHD(ctx context.Context, r *remote, text func(hardening.Facts) string) (string, error) {
	facts, hasInclude, err := sshdFacts(ctx, r)
	if err != nil {
		return "", err
	}
	bak := "/etc/ssh/.moat-sshd-" + token()
	if _, err := r.run(ctx, strings.NewReader(text(facts)), applyScript(bak, !hasInclude)); err != nil {
		return "", fmt.Errorf("harden sshd: %w; sshd_config is as it was (enrol with --no-harden-sshd to leave sshd alone)", err)
	}
	if err := login(ctx, r, "touch "+bak+"/confirmed"); err != nil {
		_, rerr := r.run(ctx, nil, fmt.Sprintf("touch %[1]s/confirmed && sh %[1]s/restore && rm -rf %[1]s", bak))
		if rerr == nil {
			rerr = login(ctx, r, "true")
		}
		if rerr != nil {
			return "", fmt.Errorf("harden sshd: a new login failed after reloading sshd (%v), and restoring the previous configuration failed too (%v): the node restores it by itself within a minute", err, rerr)
		}
		return "", fmt.Errorf("harden sshd: a new login failed after reloading sshd, so the previous configuration is back and you can log in as before: %w (enrol with --no-harden-sshd to leave sshd alone)", err)
	}
	what := "hardened sshd: modern algorithms only, no password login, no agent forwarding (" + hardening.DropIn + ")"
	if out, err := r.run(ctx, nil, sshdBin+` && "$sshd" -T`); err == nil {
		if off := hardening.NotInForce(hardening.ParseText(text(facts)), audit.ParseSSHDT([]byte(out))); len(off) > 0 {
			what += "; but not in force: " + strings.Join(off, "; ")
		}
	}
	return what, nil
}

// sshdFacts reads what hardening needs to know of the node's sshd.
func sshdFacts(ctx context.Context, r *remote) (hardening.Facts, bool, error) {
	out, err := r.run(ctx, nil, sshdBin+` && "$sshd" -T`)
	if err != nil {
		return hardening.Facts{}, false, fmt.Errorf("read the node's sshd settings: %w", err)
	}
	f := hardening.Facts{Effective: audit.ParseSSHDT([]byte(out))}
	keys, err := r.run(ctx, nil, `test -e /etc/ssh/ssh_host_ed25519_key && echo ed25519; cat /etc/ssh/ssh_host_rsa_key.pub 2>/dev/null; `+
		`grep -Eiq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config && echo include; true`)
	if err != nil {
		return f, false, err
	}
	include := false
	for _, line := range strings.Split(keys, "\n") {
		switch line = strings.TrimSpace(line); {
		case line == "ed25519":
			f.HasEd25519 = true
		case line == "include":
			include = true
		case strings.HasPrefix(line, "ssh-rsa "):
			f.RSABits = rsaBits(line)
		}
	}
	return f, include, nil
}

func rsaBits(line string) int {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return 0
	}
	ck, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	if k, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok {
		return k.N.BitLen()
	}
	return 0
}

// applyScript backs up, writes the drop-in from stdin, checks it with
// sshd -t (restoring the backup if sshd refuses it), arms the dead man's
// switch and reloads sshd.
func applyScript(bak string, addInclude bool) string {
	include := ""
	if addInclude {
		include = fmt.Sprintf(`{ echo %s; cat %s/sshd_config; } > /etc/ssh/sshd_config.moat-new && chmod --reference=/etc/ssh/sshd_config /etc/ssh/sshd_config.moat-new && mv -f /etc/ssh/sshd_config.moat-new /etc/ssh/sshd_config`,
			shellQuote(hardening.Include), bak)
	}
	return fmt.Sprintf(`set -e
%[1]s
%[2]s
bak=%[3]s
umask 077
mkdir "$bak"
cp -p /etc/ssh/sshd_config "$bak/sshd_config"
if [ -e %[4]s ]; then cp -p %[4]s "$bak/dropin"; fi
if [ ! -d %[6]s ]; then mkdir -m 755 %[6]s; touch "$bak/made-dir"; fi
cat > "$bak/restore-files" <<'MOAT'
cp -p %[3]s/sshd_config /etc/ssh/sshd_config
if [ -e %[3]s/dropin ]; then cp -p %[3]s/dropin %[4]s; else rm -f %[4]s; fi
if [ -e %[3]s/made-dir ]; then rmdir %[6]s 2>/dev/null || true; fi
MOAT
{ echo "sh $bak/restore-files"; echo %[1]s; echo %[5]s; echo reload_sshd; } > "$bak/restore"
cat > %[4]s.moat-new
chmod 644 %[4]s.moat-new
mv -f %[4]s.moat-new %[4]s
%[7]s
if ! out=$("$sshd" -t 2>&1); then
	sh "$bak/restore-files"; rm -rf "$bak"
	echo "sshd -t refused the hardened settings, which are undone: $out" >&2
	exit 3
fi
setsid -f sh -c "sleep 60; if [ ! -e $bak/confirmed ]; then sh $bak/restore; fi; rm -rf $bak" </dev/null >/dev/null 2>&1
if ! reload_sshd; then sh "$bak/restore-files"; rm -rf "$bak"; exit 4; fi
`, sshdBin, reloadSSHD, bak, hardening.DropIn, shellQuote(reloadSSHD), hardening.DropInDir, include)
}

// login logs in on a new connection and runs command (which tells the
// node's dead man's switch the login worked), retrying while sshd
// restarts.
func login(ctx context.Context, r *remote, command string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.runFresh(ctx, command)
		if err == nil || time.Now().After(deadline) || definite(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// definite says a login failed for good, not because sshd is restarting.
func definite(err error) bool {
	msg := err.Error()
	for _, s := range []string{"Permission denied", "Host key verification failed", "no matching", "REMOTE HOST IDENTIFICATION"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return errors.Is(err, context.Canceled)
}

func token() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
