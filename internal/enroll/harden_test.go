package enroll

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/hardening"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestHardenRollsBack: a drop-in sshd refuses, and one sshd accepts but
// that locks the operator out, both leave /etc/ssh as it was and the
// operator able to log in.
func TestHardenRollsBack(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	n, _ := c.Node("n1")
	etcSSH := filepath.Join(n.Dir, "etc-ssh")
	tests := []struct {
		name   string
		dropIn func(hardening.Facts) string
		says   string
	}{
		{"sshd -t refuses it", func(f hardening.Facts) string { return "NoSuchKeyword yes\n" + dropInFor(f) },
			"sshd -t refused the hardened settings"},
		{"it locks the operator out", func(f hardening.Facts) string { return "AllowUsers nobody\n" + dropInFor(f) },
			"a new login failed after reloading sshd, so the previous configuration is back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testcluster.Snapshot(t, etcSSH)
			r, err := newRemote(inventory.Access{Dest: "n1", SSHConfig: c.SSHConfig}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			_, err = hardenSSHD(context.Background(), r, tt.dropIn)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("hardenSSHD: %v; want an error saying %q", err, tt.says)
			}
			if diff := cmp.Diff(before, testcluster.Snapshot(t, etcSSH)); diff != "" {
				t.Errorf("/etc/ssh changed (-before +after):\n%s", diff)
			}
			out, err := exec.Command("ssh", "-F", c.SSHConfig, "-o", "ControlPath=none", "n1", "echo", "in").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "in" {
				t.Errorf("the operator's login afterwards: %v %s", err, out)
			}
		})
	}
}
