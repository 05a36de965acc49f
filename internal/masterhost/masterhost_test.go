package masterhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sshdConfig writes an sshd configuration in dir that includes dir/d and
// has a host key of its own, as Debian's does with /etc/ssh.
func sshdConfig(t *testing.T, dir string) Options {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "host_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	conf := "Include " + dir + "/d/*.conf\nHostKey " + key + "\nPasswordAuthentication yes\nUsePAM no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
	path := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{Moat: "/usr/local/bin/moat", Config: path, DropIn: filepath.Join(dir, "d", "10-moat-api.conf"), CAFile: filepath.Join(dir, "cas")}
}

func needSSHD(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("needs /usr/sbin/sshd: apt-get install openssh-server")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: sshd -t reads its host key")
	}
}

// snapshot is every file under dir and its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

// The real sshd takes the drop-in: the api user gets moat's lookups,
// root (anyone else) nothing of it.
func TestDropInTakenBySSHD(t *testing.T) {
	needSSHD(t)
	o := sshdConfig(t, t.TempDir())
	o.defaults()
	if err := installDropIn(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for kw, want := range map[string]string{
		"authorizedkeyscommand":       "/usr/local/bin/moat api keys %u %t %k",
		"authorizedprincipalscommand": "/usr/local/bin/moat api principals %u %t %k",
		"authorizedkeysfile":          "none",
		"exposeauthinfo":              "yes",
		"permittty":                   "no",
		"disableforwarding":           "yes",
		"passwordauthentication":      "no",
		"trustedusercakeys":           o.CAFile,
	} {
		got, err := effective(context.Background(), o, "moat", kw)
		if err != nil || got != want {
			t.Errorf("user moat: %s %q (%v), want %q", kw, got, err, want)
		}
	}
	for kw, want := range map[string]string{"authorizedkeyscommand": "none", "passwordauthentication": "yes", "permittty": "yes", "exposeauthinfo": "no"} {
		got, err := effective(context.Background(), o, "root", kw)
		if err != nil || got != want {
			t.Errorf("root: %s %q (%v), want %q: the drop-in reached beyond its user", kw, got, err, want)
		}
	}
}

// An sshd that refuses the configuration with the drop-in leaves sshd's
// files exactly as they were: with an earlier drop-in, and without.
func TestDropInRefusedLeavesSSHDAsItWas(t *testing.T) {
	needSSHD(t)
	for _, earlier := range []string{"", "# an earlier moat drop-in\nMatch User moat\n\tPermitTTY no\n"} {
		dir := t.TempDir()
		o := sshdConfig(t, dir)
		if earlier != "" {
			os.WriteFile(o.DropIn, []byte(earlier), 0o644)
		}
		// An sshd whose check fails, as one would on a keyword it lacks.
		o.SSHD = filepath.Join(dir, "sshd")
		os.WriteFile(o.SSHD, []byte("#!/bin/sh\n[ \"$1\" = -t ] && { echo 'Bad configuration option: ExposeAuthInfo' >&2; exit 255; }\nexec /usr/sbin/sshd \"$@\"\n"), 0o755)
		before := snapshot(t, dir)
		o.defaults()
		err := installDropIn(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "Bad configuration option") || !strings.Contains(err.Error(), "as it was") {
			t.Fatalf("earlier %q: %v", earlier, err)
		}
		after := snapshot(t, dir)
		if len(after) != len(before) {
			t.Fatalf("earlier %q: files %d before, %d after", earlier, len(before), len(after))
		}
		for p, b := range before {
			if after[p] != b {
				t.Errorf("earlier %q: %s changed:\n%s", earlier, p, after[p])
			}
		}
	}
}

// A drop-in an earlier Match overrides for the api user is not kept:
// moat's lookups would not be what sshd asks.
func TestDropInOverriddenIsNotKept(t *testing.T) {
	needSSHD(t)
	dir := t.TempDir()
	o := sshdConfig(t, dir)
	os.WriteFile(filepath.Join(dir, "d", "01-other.conf"), []byte("Match User moat\n\tAuthorizedKeysCommand /usr/bin/true\n\tAuthorizedKeysCommandUser nobody\n"), 0o644)
	o.defaults()
	err := installDropIn(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "an earlier drop-in") {
		t.Fatalf("overridden drop-in: %v", err)
	}
	if _, err := os.Stat(o.DropIn); !os.IsNotExist(err) {
		t.Fatalf("the drop-in stayed: %v", err)
	}
}

func TestCheckOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by root")
	}
	if err := CheckOwnership("/usr/bin/true"); err != nil {
		t.Errorf("/usr/bin/true: %v", err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	bin := filepath.Join(dir, "moat")
	os.WriteFile(bin, nil, 0o755)
	if err := CheckOwnership(bin); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Errorf("a binary in a world-writable directory: %v", err)
	}
	os.Chmod(dir, 0o755)
	os.Chown(bin, 65534, 65534)
	if err := CheckOwnership(bin); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("a binary of nobody's: %v", err)
	}
}

func TestIncludesDropIns(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte("Port 22\n"), 0o644)
	if err := includesDropIns(conf, "/etc/ssh/sshd_config.d"); err == nil {
		t.Error("a configuration without Include accepted")
	}
	os.WriteFile(conf, []byte("Include /etc/ssh/sshd_config.d/*.conf\n"), 0o644)
	if err := includesDropIns(conf, "/etc/ssh/sshd_config.d"); err != nil {
		t.Error(err)
	}
}
