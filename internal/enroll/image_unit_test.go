package enroll

import (
	"strings"
	"testing"
)

func TestBuilderName(t *testing.T) {
	tests := []struct{ pool, want string }{
		{"web", "moat-builder-web-abc123"},
		{strings.Repeat("p", 60), "moat-builder-" + strings.Repeat("p", 63-len("moat-builder-")-7) + "-abc123"},
		{"a-" + strings.Repeat("b", 41) + "-c", "moat-builder-a-" + strings.Repeat("b", 41) + "-abc123"},
	}
	for _, tt := range tests {
		got := builderName(tt.pool, "abc123")
		if got != tt.want || len(got) > 63 || !nodeNameRE().MatchString(got) {
			t.Errorf("builderName(%q) = %q (%d), want %q, a hostname", tt.pool, got, len(got), tt.want)
		}
	}
}

func TestParseOperatorKey(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqxgGo3vTwMtIePvrgz8zGbm13P5jaFKNaQwvS0iPcO"
	for _, ok := range []string{key, key + " me@laptop", "  " + key + " me\n"} {
		if _, err := ParseOperatorKey(ok); err != nil {
			t.Errorf("ParseOperatorKey(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ssh-ed25519", `restrict ` + key, `command="id" ` + key, key + "\n" + key, "not a key"} {
		if _, err := ParseOperatorKey(bad); err == nil {
			t.Errorf("ParseOperatorKey(%q) accepted", bad)
		}
	}
}

// TestSealScript: the machine id is emptied only where systemd runs (on
// a local node /etc/machine-id is the machine's own); host keys, markers
// and the peer key always go.
func TestSealScript(t *testing.T) {
	for _, systemd := range []bool{true, false} {
		s := sealScript(systemd)
		for _, want := range []string{"/etc/ssh/ssh_host_*key", "/etc/moat/hostkey.onetime", "/var/lib/moat/firstboot.done", "/etc/moat/peer_ed25519", "truncate -s 0 {}"} {
			if !strings.Contains(s, want) {
				t.Errorf("systemd %v: the seal lacks %q", systemd, want)
			}
		}
		if got := strings.Contains(s, "/etc/machine-id"); got != systemd {
			t.Errorf("systemd %v: touches /etc/machine-id: %v", systemd, got)
		}
	}
	if u := firstbootUnit("hetzner"); !strings.Contains(u, "ExecStart=/usr/local/bin/moat node firstboot --metadata hetzner\n") ||
		!strings.Contains(u, "ConditionPathExists=!/var/lib/moat/firstboot.done\n") {
		t.Errorf("firstboot unit:\n%s", u)
	}
}
