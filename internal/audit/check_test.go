package audit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goodSSHD are settings that yield no finding.
var goodSSHD = map[string]string{
	"port": "22", "passwordauthentication": "no", "kbdinteractiveauthentication": "no",
	"permitrootlogin": "prohibit-password", "permitemptypasswords": "no",
	"pubkeyauthentication": "yes", "x11forwarding": "no", "allowtcpforwarding": "no",
}

// with returns goodSSHD with the given key/value pairs changed.
func with(kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range goodSSHD {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var (
	sshd22   = Socket{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 1, Pid: 45, Process: "sshd"}
	sshd22v6 = Socket{Proto: "tcp6", Address: "::", Port: 22, Inode: 2, Pid: 45, Process: "sshd"}
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		socks []Socket
		sshd  map[string]string
		want  []Finding
	}{
		{"sshd only, good settings", []Socket{sshd22, sshd22v6}, goodSSHD, []Finding{}},
		{"nothing at all", nil, goodSSHD, []Finding{}},
		{"sshd on another port is fine", []Socket{{Proto: "tcp", Address: "0.0.0.0", Port: 2222, Inode: 1, Pid: 45, Process: "sshd"}}, goodSSHD, []Finding{}},
		{"sshd on several ports", []Socket{sshd22, sshd22v6, {Proto: "tcp", Address: "10.0.0.5", Port: 2222, Inode: 3, Pid: 45, Process: "sshd"}}, goodSSHD,
			[]Finding{{"info", "sshd listens on several ports: 22, 2222"}}},
		{"public listeners", []Socket{
			sshd22,
			{Proto: "tcp", Address: "0.0.0.0", Port: 80, Inode: 5, Pid: 123, Process: "nginx"},
			{Proto: "tcp6", Address: "::", Port: 80, Inode: 6, Pid: 123, Process: "nginx"},
			{Proto: "udp", Address: "10.1.2.3", Port: 53, Inode: 7, Pid: 9, Process: "dnsmasq"},
			{Proto: "tcp6", Address: "::ffff:10.0.0.1", Port: 8080, Inode: 8, Pid: 10},
		}, goodSSHD, []Finding{
			{"high", "dnsmasq listens on 10.1.2.3:53/udp"},
			{"high", "nginx listens on 0.0.0.0:80/tcp"},
			{"high", "nginx listens on [::]:80/tcp6"},
			{"high", "pid 10 listens on [::ffff:10.0.0.1]:8080/tcp6"},
		}},
		{"workers with SO_REUSEPORT give one finding", []Socket{
			{Proto: "tcp", Address: "0.0.0.0", Port: 80, Inode: 5, Pid: 123, Process: "nginx"},
			{Proto: "tcp", Address: "0.0.0.0", Port: 80, Inode: 6, Pid: 124, Process: "nginx"},
		}, goodSSHD, []Finding{{"high", "nginx listens on 0.0.0.0:80/tcp"}}},
		{"loopback listeners are info", []Socket{
			{Proto: "tcp", Address: "127.0.0.1", Port: 631, Inode: 5, Pid: 300, Process: "cupsd", Loopback: true},
			{Proto: "udp6", Address: "::1", Port: 53, Inode: 6, Pid: 301, Process: "unbound", Loopback: true},
			{Proto: "tcp", Address: "127.0.0.1", Port: 6010, Inode: 7, Pid: 45, Process: "sshd", Loopback: true},
		}, goodSSHD, []Finding{
			{"info", "cupsd listens on 127.0.0.1:631/tcp (loopback only, reachable only from the node)"},
			{"info", "unbound listens on [::1]:53/udp6 (loopback only, reachable only from the node)"},
		}},
		{"unknown owners are high, loopback or not", []Socket{
			{Proto: "udp", Address: "0.0.0.0", Port: 51820, Inode: 0},
			{Proto: "tcp", Address: "127.0.0.1", Port: 9000, Inode: 77, Loopback: true},
		}, goodSSHD, []Finding{
			{"high", "unknown owner listens on 0.0.0.0:51820/udp (socket inode 0 held by no visible process)"},
			{"high", "unknown owner listens on 127.0.0.1:9000/tcp (socket inode 77 held by no visible process)"},
		}},
		{"sshd settings missing", []Socket{sshd22}, nil, []Finding{{"warn", "could not read sshd settings"}}},
		{"sshd settings empty", []Socket{sshd22}, map[string]string{}, []Finding{{"warn", "could not read sshd settings"}}},
		{"password authentication", nil, with("passwordauthentication", "yes"),
			[]Finding{{"high", "sshd allows password authentication (passwordauthentication yes)"}}},
		{"keyboard-interactive", nil, with("kbdinteractiveauthentication", "yes"),
			[]Finding{{"warn", "sshd allows keyboard-interactive authentication (kbdinteractiveauthentication yes)"}}},
		{"challenge-response on old sshd", nil, func() map[string]string {
			m := with("challengeresponseauthentication", "yes")
			delete(m, "kbdinteractiveauthentication")
			return m
		}(), []Finding{{"warn", "sshd allows keyboard-interactive authentication (challengeresponseauthentication yes)"}}},
		{"both kbd names: the new one decides", nil, with("kbdinteractiveauthentication", "yes", "challengeresponseauthentication", "yes"),
			[]Finding{{"warn", "sshd allows keyboard-interactive authentication (kbdinteractiveauthentication yes)"}}},
		{"root login", nil, with("permitrootlogin", "yes"),
			[]Finding{{"high", "sshd allows root login with a password (permitrootlogin yes)"}}},
		{"root login without password is fine", nil, with("permitrootlogin", "without-password"), []Finding{}},
		{"empty passwords", nil, with("permitemptypasswords", "yes"),
			[]Finding{{"high", "sshd allows empty passwords (permitemptypasswords yes)"}}},
		{"no public keys", nil, with("pubkeyauthentication", "no"),
			[]Finding{{"warn", "sshd refuses public key authentication (pubkeyauthentication no)"}}},
		{"x11", nil, with("x11forwarding", "yes"),
			[]Finding{{"info", "sshd allows X11 forwarding (x11forwarding yes)"}}},
		{"tcp forwarding yes", nil, with("allowtcpforwarding", "yes"),
			[]Finding{{"info", "sshd allows TCP forwarding (allowtcpforwarding yes); the master key is restricted anyway"}}},
		{"tcp forwarding all", nil, with("allowtcpforwarding", "all"),
			[]Finding{{"info", "sshd allows TCP forwarding (allowtcpforwarding all); the master key is restricted anyway"}}},
		{"tcp forwarding local only is fine", nil, with("allowtcpforwarding", "local"), []Finding{}},
		{"sorted high, warn, info, then text", []Socket{
			sshd22,
			{Proto: "tcp", Address: "0.0.0.0", Port: 80, Inode: 5, Pid: 123, Process: "nginx"},
			{Proto: "tcp", Address: "127.0.0.1", Port: 631, Inode: 6, Pid: 300, Process: "cupsd", Loopback: true},
		}, with("x11forwarding", "yes", "pubkeyauthentication", "no", "passwordauthentication", "yes"), []Finding{
			{"high", "nginx listens on 0.0.0.0:80/tcp"},
			{"high", "sshd allows password authentication (passwordauthentication yes)"},
			{"warn", "sshd refuses public key authentication (pubkeyauthentication no)"},
			{"info", "cupsd listens on 127.0.0.1:631/tcp (loopback only, reachable only from the node)"},
			{"info", "sshd allows X11 forwarding (x11forwarding yes)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Check(tt.socks, tt.sshd)); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}
