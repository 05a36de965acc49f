package audit

import (
	"fmt"
	"strings"

	"github.com/moatcloud/moat/internal/hardening"
)

// sshdRule flags one sshd setting when it has one of the listed values.
type sshdRule struct {
	key      string
	values   []string
	severity string
	why      string // a format with one %s for "key value"
	aliasOf  string // the newer name of key; the rule yields to it when present
}

// sshdRules are the settings that weaken sshd, in SSHDKeys order.
var sshdRules = []sshdRule{
	{"passwordauthentication", []string{"yes"}, sevHigh, "sshd allows password authentication (%s)", ""},
	{"kbdinteractiveauthentication", []string{"yes"}, sevWarn, "sshd allows keyboard-interactive authentication (%s)", ""},
	{"challengeresponseauthentication", []string{"yes"}, sevWarn, "sshd allows keyboard-interactive authentication (%s)", "kbdinteractiveauthentication"},
	{"permitrootlogin", []string{"yes"}, sevHigh, "sshd allows root login with a password (%s)", ""},
	{"permitemptypasswords", []string{"yes"}, sevHigh, "sshd allows empty passwords (%s)", ""},
	{"pubkeyauthentication", []string{"no"}, sevWarn, "sshd refuses public key authentication (%s)", ""},
	{"x11forwarding", []string{"yes"}, sevInfo, "sshd allows X11 forwarding (%s)", ""},
	{"allowtcpforwarding", []string{"yes", "all"}, sevInfo, "sshd allows TCP forwarding (%s); the master key is restricted anyway", ""},
	{"allowagentforwarding", []string{"yes"}, sevWarn, "sshd allows agent forwarding (%s): a login to this node can use the forwarding user's keys", ""},
}

// sshdFindings applies sshdRules. A missing sshd map means sshd -T failed,
// for the reason in sshdErr if known.
func sshdFindings(sshd map[string]string, sshdErr error) []Finding {
	if len(sshd) == 0 {
		what := "could not read sshd settings"
		if sshdErr != nil {
			what += ": " + sshdErr.Error()
		}
		return []Finding{{sevWarn, what}}
	}
	var fs []Finding
	for _, r := range sshdRules {
		if _, renamed := sshd[r.aliasOf]; renamed && r.aliasOf != "" {
			continue
		}
		v, ok := sshd[r.key]
		if ok && matchesAny(v, r.values) {
			fs = append(fs, Finding{r.severity, fmt.Sprintf(r.why, r.key+" "+v)})
		}
	}
	for _, key := range hardening.AlgorithmKeys {
		weak, broken := hardening.Weak(key, sshd[key])
		if len(broken) > 0 {
			fs = append(fs, Finding{sevHigh, fmt.Sprintf("sshd offers broken %s (SHA-1, MD5, CBC, 3DES, RC4 or DSA): %s", key, strings.Join(broken, ","))})
		}
		if len(weak) > 0 {
			fs = append(fs, Finding{sevWarn, fmt.Sprintf("sshd offers weak %s (NIST curves, small groups, non-ETM or short MACs): %s", key, strings.Join(weak, ","))})
		}
	}
	return fs
}

func matchesAny(v string, values []string) bool {
	for _, want := range values {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}
