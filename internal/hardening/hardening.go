// Package hardening is what a hardened sshd looks like on a moat node: the
// drop-in `moat node add` installs in /etc/ssh/sshd_config.d, built from
// what the node's own sshd supports, and the checks `moat node audit`
// makes of the settings in force. Pure: no I/O.
//
// The drop-in keeps only modern key exchange (curve25519, sntrup761, and
// the 4096 and 8192-bit finite-field groups), AEAD and CTR ciphers,
// encrypt-then-MAC SHA-2 MACs and, where the node has an ed25519 host key,
// ed25519 and RSA-SHA2 (3072 bits or more) host keys; it turns off
// password and keyboard-interactive login, agent and X11 forwarding,
// shortens LoginGraceTime and sizes MaxStartups for the master and peers.
// It sets nothing that could lock the operator's own key out
// (PermitRootLogin, AllowUsers, PubkeyAcceptedAlgorithms stay as they are),
// and enrolment checks a new login works before it keeps it.
package hardening

import (
	"fmt"
	"slices"
	"strings"
)

// DropIn is where the settings go. sshd keeps the first value it reads for
// most keywords and Debian's sshd_config includes this directory first, so
// a name sorting before the distribution's own drop-ins (such as cloud
// images' 50-cloud-init.conf, which turns passwords on) wins.
const (
	DropInDir = "/etc/ssh/sshd_config.d"
	DropIn    = DropInDir + "/00-moat.conf"
	Include   = "Include " + DropInDir + "/*.conf"
)

// The algorithms kept, in order of preference.
var (
	Kex = []string{
		"sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
		"diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
	}
	Ciphers = []string{
		"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
		"aes256-ctr", "aes192-ctr", "aes128-ctr",
	}
	MACs        = []string{"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"}
	hostKeyAlgs = []string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}
)

// MinRSABits is the smallest RSA host key the drop-in offers.
const MinRSABits = 3072

// Facts are what enrolment reads of the node's sshd before hardening it.
type Facts struct {
	// Effective is `sshd -T` as audit.ParseSSHDT reads it: the
	// algorithms sshd would use now (its defaults, which are what it
	// supports, or what the operator narrowed them to).
	Effective  map[string]string
	HasEd25519 bool // /etc/ssh/ssh_host_ed25519_key exists
	RSABits    int  // of /etc/ssh/ssh_host_rsa_key, 0 without one
}

// Setting is one line of the drop-in.
type Setting struct{ Key, Value string }

// Settings is the drop-in for a node: each algorithm list is what moat
// keeps of what the node's sshd would offer now, so the file never names
// an algorithm this sshd does not know; a list that would come out empty
// is left as it is. Pure.
func Settings(f Facts) []Setting {
	var out []Setting
	add := func(key string, keep []string) {
		if v := intersect(keep, f.Effective[strings.ToLower(key)]); v != "" {
			out = append(out, Setting{key, v})
		}
	}
	add("KexAlgorithms", Kex)
	add("Ciphers", Ciphers)
	add("MACs", MACs)
	if f.HasEd25519 {
		// Without an ed25519 host key the master pinned another kind:
		// host key algorithms stay as they are.
		keys := hostKeyAlgs[:1]
		if f.RSABits >= MinRSABits {
			keys = hostKeyAlgs
		}
		add("HostKeyAlgorithms", keys)
	}
	kbd := "KbdInteractiveAuthentication"
	if _, ok := f.Effective["kbdinteractiveauthentication"]; !ok {
		kbd = "ChallengeResponseAuthentication" // before OpenSSH 8.7
	}
	return append(out,
		Setting{"PasswordAuthentication", "no"},
		Setting{kbd, "no"},
		Setting{"PermitEmptyPasswords", "no"},
		Setting{"AllowAgentForwarding", "no"},
		Setting{"X11Forwarding", "no"},
		Setting{"LoginGraceTime", "20"},
		// The master holds one connection per node and peers open a few
		// while images travel: room for both and for reconnects after
		// an outage, while LoginGraceTime bounds each unauthenticated one.
		Setting{"MaxStartups", "32:50:128"},
	)
}

// intersect keeps, in keep's order, what the comma-separated list has.
func intersect(keep []string, list string) string {
	have := strings.Split(list, ",")
	var out []string
	for _, k := range keep {
		if slices.Contains(have, k) {
			out = append(out, k)
		}
	}
	return strings.Join(out, ",")
}

// Text is the drop-in file for settings.
func Text(settings []Setting) string {
	var b strings.Builder
	b.WriteString("# Written by moat node add: sshd hardened for a moat node.\n")
	b.WriteString("# Remove this file and reload sshd to undo; moat node add --no-harden-sshd leaves sshd alone.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s %s\n", s.Key, s.Value)
	}
	return b.String()
}

// ParseText reads back the settings of a drop-in (Text's format).
func ParseText(text string) []Setting {
	var out []Setting
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		out = append(out, Setting{k, strings.TrimSpace(v)})
	}
	return out
}
