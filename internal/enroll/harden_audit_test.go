package enroll_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// sshAuditNotes are what Debian 12's ssh-audit (2.5.0) says of algorithms
// newer than itself: not weaknesses of the node.
var sshAuditNotes = []string{"sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "kex-strict-s-v00@openssh.com"}

// TestEnrolledSSHDPassesSSHAudit: an enrolled node's sshd gets no fail
// and no warn from Debian's ssh-audit, beyond its notes on newer
// algorithms; moat's own audit agrees; the operator still logs in.
func TestEnrolledSSHDPassesSSHAudit(t *testing.T) {
	if _, err := exec.LookPath("ssh-audit"); err != nil {
		t.Skip("needs ssh-audit: apt-get install ssh-audit (scripts/test installs it)")
	}
	c := testcluster.NewCluster(t, 1)
	o := newOperator(t, c)
	n, _ := c.Node("n1")

	before := sshAudit(t, n.Addr.String())
	if len(before) == 0 {
		t.Fatal("ssh-audit finds nothing wrong with a stock sshd: the test cannot tell hardening from none")
	}
	_, steps := o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	if !strings.Contains(steps, "hardened sshd") || strings.Contains(steps, "not in force") {
		t.Errorf("node add did not say it hardened sshd:\n%s", steps)
	}
	if after := sshAudit(t, n.Addr.String()); len(after) > 0 {
		t.Errorf("ssh-audit after enrolment:\n%s", strings.Join(after, "\n"))
	}
	var report nodeapi.AuditReport
	out, _ := o.mustMoat("node", "audit", "--json", "--strict", "n1")
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if report.Hardening != "in force" {
		t.Errorf("moat node audit: hardening %q, want in force", report.Hardening)
	}
	for _, f := range report.Findings {
		if f.Severity != "info" {
			t.Errorf("moat node audit finding: %s %s", f.Severity, f.What)
		}
	}
	if out, err := exec.Command("ssh", "-F", o.sshConfig, "-o", "BatchMode=yes", "n1", "echo", "in").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "in" {
		t.Errorf("the operator's own login after hardening: %v %s", err, out)
	}
	// Again: the same drop-in, still in force.
	o.mustMoat("node", "add", "-F", o.sshConfig, "n1")
	if after := sshAudit(t, n.Addr.String()); len(after) > 0 {
		t.Errorf("ssh-audit after a second enrolment:\n%s", strings.Join(after, "\n"))
	}
}

// sshAudit runs ssh-audit against host:22 and returns each fail and warn,
// leaving out its notes on algorithms newer than itself. (Its JSON output
// carries no notes: the text is read.)
func sshAudit(t *testing.T, host string) []string {
	t.Helper()
	out, err := exec.Command("ssh-audit", "-n", "-t", "10", host).Output() // exits non-zero when it finds anything
	if !strings.Contains(string(out), "# key exchange algorithms") {
		t.Fatalf("ssh-audit %s: %v\n%s", host, err, out)
	}
	var problems []string
	current := ""
	for _, line := range strings.Split(string(out), "\n") {
		if m := sshAuditLine.FindStringSubmatch(line); m != nil {
			current = m[1] + " " + m[2]
			if m[1] == "cve" {
				problems = append(problems, line)
			}
		}
		level := sshAuditLevel.FindStringSubmatch(line)
		if level == nil || slices.ContainsFunc(sshAuditNotes, func(n string) bool { return strings.HasSuffix(current, " "+n) }) {
			continue
		}
		problems = append(problems, current+": "+strings.TrimSpace(line[strings.Index(line, "["):]))
	}
	return problems
}

var (
	sshAuditLine  = regexp.MustCompile(`^\((\w+)\) (\S+)`)
	sshAuditLevel = regexp.MustCompile(`\[(fail|warn)\]`)
)
