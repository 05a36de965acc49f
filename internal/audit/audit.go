// Package audit checks what a node exposes: every listening socket with its
// owning process, and the sshd settings that weaken it.
//
// A moat node promises to listen on no port but OpenSSH. Run lists the
// sockets of the caller's network namespace from /proc/net, attributes them
// to processes through /proc/PID/fd, reads the effective sshd settings with
// `sshd -T`, and turns both into findings a human can act on.
package audit

import (
	"context"
	"fmt"
)

// Socket is one listening TCP socket or bound UDP socket.
type Socket struct {
	Proto    string `json:"proto"`   // tcp, tcp6, udp, udp6
	Address  string `json:"address"` // "0.0.0.0", "::", "127.0.0.1", "10.1.2.3" (no port)
	Port     int    `json:"port"`
	Inode    uint64 `json:"inode"`
	Pid      int    `json:"pid,omitempty"`
	Process  string `json:"process,omitempty"` // comm of the owning process (/proc/PID/comm)
	Loopback bool   `json:"loopback"`
	// Intended says why a socket the operator asked for listens (see
	// Intended), e.g. "edge (intended)"; empty for the others.
	Intended string `json:"intended,omitempty"`
}

// Finding is one thing the audit wants a human to look at.
type Finding struct {
	Severity string `json:"severity"` // "high", "warn" or "info"
	What     string `json:"what"`     // one line for humans, e.g. "nginx listens on 0.0.0.0:80/tcp"
}

// Severities, most severe first.
const (
	sevHigh = "high"
	sevWarn = "warn"
	sevInfo = "info"
)

// Report is the result of a node audit.
type Report struct {
	Sockets  []Socket          `json:"sockets"`
	SSHD     map[string]string `json:"sshd,omitempty"` // the effective sshd settings that matter (subset of `sshd -T`)
	Findings []Finding         `json:"findings"`
	// Hardening says whether moat's sshd drop-in (package hardening) is
	// in force: "in force", "not installed", or "not in force: why".
	Hardening string `json:"hardening,omitempty"`
}

// SSHDKeys is the subset of sshd settings the report keeps.
var SSHDKeys = []string{"port", "listenaddress", "passwordauthentication", "kbdinteractiveauthentication", "challengeresponseauthentication",
	"permitrootlogin", "permitemptypasswords", "pubkeyauthentication", "x11forwarding", "allowtcpforwarding", "allowagentforwarding",
	"authorizedkeysfile", "logingracetime", "maxstartups", "kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"}

// Run is what the node daemon calls: Listening("/proc"), `sshd -T` (looked
// up on PATH and in /usr/sbin; its failure becomes a finding, not an error),
// moat's sshd drop-in, and Check.
func Run(ctx context.Context) (Report, error) {
	return runner{procRoot: "/proc", sshdT: execSSHDT, dropIn: readDropIn, oneTime: readOneTime}.run(ctx)
}

// runner holds what Run touches outside the process, so tests can stub it.
type runner struct {
	procRoot string
	sshdT    func(ctx context.Context) ([]byte, error) // output of `sshd -T`
	dropIn   func() (string, error)                    // moat's sshd drop-in; fs.ErrNotExist if absent
	oneTime  func() (string, error)                    // firstboot's one-time host key marker; fs.ErrNotExist if absent
	intended []Intended
}

func (r runner) run(ctx context.Context) (Report, error) {
	socks, err := Listening(r.procRoot)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	var sshd, all map[string]string
	out, sshdErr := r.sshdT(ctx)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return Report{}, fmt.Errorf("audit: read sshd settings: %w", ctxErr)
	}
	if sshdErr == nil {
		all = ParseSSHDT(out)
		sshd = keep(all, SSHDKeys)
	}
	judged, intended := splitIntended(socks, r.intended)
	rep := Report{
		Sockets:  socks,
		SSHD:     sshd,
		Findings: sortFindings(append(check(judged, sshd, sshdErr), intended...)),
	}
	if r.dropIn != nil && all != nil {
		text, err := r.dropIn()
		var f *Finding
		rep.Hardening, f = hardeningState(text, err, all)
		if f != nil {
			rep.Findings = sortFindings(append(rep.Findings, *f))
		}
	}
	if r.oneTime != nil {
		if f := oneTimeFinding(r.oneTime()); f != nil {
			rep.Findings = sortFindings(append(rep.Findings, *f))
		}
	}
	return rep, nil
}

// keep returns the entries of m whose keys are in keys, or nil if none are.
func keep(m map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
