package hardening

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// debian12 is what `sshd -T` says of these algorithms on a fresh Debian
// 12 (OpenSSH 9.2p1).
var debian12 = map[string]string{
	"kexalgorithms":                "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
	"ciphers":                      "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
	"macs":                         "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
	"hostkeyalgorithms":            "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,sk-ssh-ed25519@openssh.com,rsa-sha2-512,rsa-sha2-256",
	"kbdinteractiveauthentication": "no",
}

func get(ss []Setting, key string) string {
	for _, s := range ss {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name  string
		facts Facts
		want  map[string]string // keys checked; "" means absent
	}{
		{"debian 12 with ed25519 and rsa 3072", Facts{Effective: debian12, HasEd25519: true, RSABits: 3072}, map[string]string{
			"KexAlgorithms":                "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group18-sha512,diffie-hellman-group16-sha512",
			"Ciphers":                      "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr",
			"MACs":                         "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
			"HostKeyAlgorithms":            "ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
			"KbdInteractiveAuthentication": "no",
			"PasswordAuthentication":       "no",
			"AllowAgentForwarding":         "no",
		}},
		{"rsa 2048 is not offered", Facts{Effective: debian12, HasEd25519: true, RSABits: 2048}, map[string]string{
			"HostKeyAlgorithms": "ssh-ed25519",
		}},
		{"no ed25519 key: host keys left alone", Facts{Effective: debian12, RSABits: 4096}, map[string]string{
			"HostKeyAlgorithms": "",
		}},
		{"an older sshd: only what it knows, and the old keyword", Facts{HasEd25519: true, Effective: map[string]string{
			"kexalgorithms": "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha1",
			"ciphers":       "chacha20-poly1305@openssh.com,aes128-cbc",
			"macs":          "hmac-sha1",
		}}, map[string]string{
			"KexAlgorithms":                   "curve25519-sha256,curve25519-sha256@libssh.org",
			"Ciphers":                         "chacha20-poly1305@openssh.com",
			"MACs":                            "",
			"ChallengeResponseAuthentication": "no",
			"KbdInteractiveAuthentication":    "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Settings(tt.facts)
			for k, want := range tt.want {
				if g := get(got, k); g != want {
					t.Errorf("%s = %q, want %q", k, g, want)
				}
			}
			for _, s := range got {
				for _, never := range []string{"PermitRootLogin", "AllowUsers", "PubkeyAcceptedAlgorithms", "PubkeyAuthentication"} {
					if s.Key == never {
						t.Errorf("the drop-in sets %s, which could lock the operator out", s.Key)
					}
				}
			}
		})
	}
}

func TestTextRoundTrip(t *testing.T) {
	s := Settings(Facts{Effective: debian12, HasEd25519: true})
	text := Text(s)
	if !strings.HasPrefix(text, "# Written by moat") {
		t.Errorf("no header:\n%s", text)
	}
	if diff := cmp.Diff(s, ParseText(text)); diff != "" {
		t.Errorf("ParseText(Text) (-want +got):\n%s", diff)
	}
}

func TestWeak(t *testing.T) {
	weak, broken := Weak("macs", debian12["macs"])
	if diff := cmp.Diff([]string{"umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512"}, weak); diff != "" {
		t.Errorf("weak macs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hmac-sha1-etm@openssh.com", "hmac-sha1"}, broken); diff != "" {
		t.Errorf("broken macs (-want +got):\n%s", diff)
	}
	weak, broken = Weak("kexalgorithms", debian12["kexalgorithms"])
	if len(broken) != 0 || len(weak) != 5 || weak[0] != "ecdh-sha2-nistp256" {
		t.Errorf("kex: weak %v broken %v", weak, broken)
	}
	if _, broken := Weak("hostkeyalgorithms", "ssh-ed25519,ssh-rsa,ssh-dss"); len(broken) != 2 {
		t.Errorf("ssh-rsa and ssh-dss not broken: %v", broken)
	}
	hardened := Settings(Facts{Effective: debian12, HasEd25519: true, RSABits: 4096})
	for _, key := range AlgorithmKeys {
		v := get(hardened, map[string]string{"kexalgorithms": "KexAlgorithms", "ciphers": "Ciphers", "macs": "MACs", "hostkeyalgorithms": "HostKeyAlgorithms"}[key])
		if weak, broken := Weak(key, v); len(weak)+len(broken) != 0 {
			t.Errorf("the drop-in's own %s are judged weak: %v %v", key, weak, broken)
		}
	}
}

func TestNotInForce(t *testing.T) {
	s := []Setting{{"PasswordAuthentication", "no"}, {"MaxStartups", "32:50:128"}, {"Unknown", "x"}}
	eff := map[string]string{"passwordauthentication": "yes", "maxstartups": "32:50:128"}
	want := []string{"passwordauthentication: in force yes, the drop-in says no"}
	if diff := cmp.Diff(want, NotInForce(s, eff)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
