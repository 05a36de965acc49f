// Package masterhost sets up the master's host for operators' SSH logins
// (moat init --ssh): the unix user they log in as, and an sshd drop-in
// that asks moat which key belongs to whom and lets those keys reach
// nothing but moat api. It never locks the operator out: sshd -t checks
// the drop-in before anything reloads, a failing one is taken away again,
// and nothing else of sshd's configuration changes.
package masterhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Options say where things go; zero values are Debian's and moat's
// defaults.
type Options struct {
	Moat   string // absolute path of the moat binary sshd runs
	User   string // the unix user operators log in as (default moat)
	CAFile string // TrustedUserCAKeys, written by the master (default /etc/moat/user_ca_keys)
	DropIn string // the sshd drop-in (default /etc/ssh/sshd_config.d/10-moat-api.conf)
	SSHD   string // sshd (default: from PATH, else /usr/sbin/sshd)
	Config string // sshd's main configuration (default /etc/ssh/sshd_config)
	// NoReload leaves a running sshd alone (it reads the drop-in when
	// next reloaded or started).
	NoReload bool
}

// Defaults.
const (
	DefaultUser   = "moat"
	DefaultCAFile = "/etc/moat/user_ca_keys"
	DefaultDropIn = "/etc/ssh/sshd_config.d/10-moat-api.conf"
)

func (o *Options) defaults() {
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.CAFile == "" {
		o.CAFile = DefaultCAFile
	}
	if o.DropIn == "" {
		o.DropIn = DefaultDropIn
	}
	if o.Config == "" {
		o.Config = "/etc/ssh/sshd_config"
	}
	if o.SSHD == "" {
		o.SSHD = "/usr/sbin/sshd"
		if p, err := exec.LookPath("sshd"); err == nil {
			o.SSHD = p
		}
	}
}

// DropInText is the sshd drop-in: for the api user only, keys and
// certificate principals from moat, publickey only, the session's key
// exposed to moat api (ExposeAuthInfo), no forwarding, no tty. It ends
// with "Match all" so nothing after it falls into the block. The
// principals command comes before the keys command: OpenSSH 8.7 to 9.3
// ignore an AuthorizedPrincipalsCommand after an AuthorizedKeysCommand
// (bz3574; Debian 12 has 9.2), and checkEffective would refuse the drop-in.
func DropInText(o Options) string {
	o.defaults()
	return fmt.Sprintf(`# moat: operators reach the master's API over SSH as user %[1]s, each with
# their own key (moat user add). Written by moat init --ssh; do not edit.
Match User %[1]s
	AuthenticationMethods publickey
	PubkeyAuthentication yes
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	HostbasedAuthentication no
	TrustedUserCAKeys %[3]s
	AuthorizedPrincipalsFile none
	AuthorizedPrincipalsCommand %[2]s api principals %%u %%t %%k
	AuthorizedPrincipalsCommandUser %[1]s
	AuthorizedKeysFile none
	AuthorizedKeysCommand %[2]s api keys %%u %%t %%k
	AuthorizedKeysCommandUser %[1]s
	ExposeAuthInfo yes
	DisableForwarding yes
	AllowTcpForwarding no
	AllowAgentForwarding no
	AllowStreamLocalForwarding no
	X11Forwarding no
	PermitTunnel no
	PermitTTY no
	PermitUserRC no
Match all
`, o.User, o.Moat, o.CAFile)
}

// Report says what Setup did.
type Report struct {
	UserCreated bool
	DropIn      string
	Reloaded    string // how sshd was reloaded; "" if it was not
}

// Setup makes the api user, the CA file and the sshd drop-in, checks the
// drop-in with sshd -t (removing it again, and putting back the one it
// replaced, if sshd refuses it), and reloads a running sshd.
func Setup(ctx context.Context, o Options) (Report, error) {
	o.defaults()
	var r Report
	if !filepath.IsAbs(o.Moat) {
		return r, fmt.Errorf("moat binary %q: sshd needs an absolute path", o.Moat)
	}
	if err := CheckOwnership(o.Moat); err != nil {
		return r, fmt.Errorf("sshd would refuse to run %s: %w (install moat as root, e.g. in /usr/local/bin)", o.Moat, err)
	}
	if err := includesDropIns(o.Config, filepath.Dir(o.DropIn)); err != nil {
		return r, err
	}
	created, err := ensureUser(ctx, o.User)
	if err != nil {
		return r, err
	}
	r.UserCreated = created
	if err := ensureCAFile(o.CAFile); err != nil {
		return r, err
	}
	if err := installDropIn(ctx, o); err != nil {
		return r, err
	}
	r.DropIn = o.DropIn
	if o.NoReload {
		return r, nil
	}
	how, err := reload(ctx, o.SSHD)
	if err != nil {
		return r, err
	}
	r.Reloaded = how
	return r, nil
}

// CheckOwnership checks what sshd checks of an AuthorizedKeysCommand:
// the file and every directory above it owned by root and writable by
// nobody else.
func CheckOwnership(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner information", p)
		}
		if st.Uid != 0 {
			return fmt.Errorf("%s is owned by uid %d, not root", p, st.Uid)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s is writable by group or others (%v)", p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

// includesDropIns checks sshd's configuration includes the drop-in
// directory: moat does not edit sshd_config itself.
func includesDropIns(config, dir string) error {
	b, err := os.ReadFile(config)
	if err != nil {
		return fmt.Errorf("read sshd's configuration: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "Include") {
			for _, g := range f[1:] {
				if strings.HasPrefix(g, dir+"/") || strings.HasPrefix(g, filepath.Base(dir)+"/") {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%s does not include %s/*.conf (Debian's does): add `Include %s/*.conf` at its top, then run moat init --ssh again", config, dir, dir)
}

// ensureUser makes the api user if missing: a system user with its own
// group, no password that can ever match ("*", which sshd does not treat
// as a locked account as it does "!"), /bin/sh as its shell (sshd runs
// forced commands through it), / as its home. An existing user keeps
// everything but a shell that cannot run commands.
func ensureUser(ctx context.Context, name string) (bool, error) {
	u, err := user.Lookup(name)
	if err == nil {
		shell, err := loginShell(u.Username)
		if err != nil {
			return false, err
		}
		if strings.HasSuffix(shell, "nologin") || strings.HasSuffix(shell, "false") {
			if out, err := exec.CommandContext(ctx, "usermod", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
				return false, fmt.Errorf("usermod --shell /bin/sh %s: %w: %s", name, err, bytes.TrimSpace(out))
			}
		}
		return false, nil
	}
	var unknown user.UnknownUserError
	if !errors.As(err, &unknown) {
		return false, fmt.Errorf("look up user %s: %w", name, err)
	}
	out, err := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--shell", "/bin/sh", "--home-dir", "/", "--no-create-home",
		"--password", "*", "--comment", "moat api (operators' SSH logins)", name).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("useradd %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return true, nil
}

func loginShell(name string) (string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			return f[6], nil
		}
	}
	return "", nil // from another NSS source: left as it is
}

func ensureCAFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f.WriteString("# Written by moat master: the CAs of `moat user trust-ca`. Edits are overwritten.\n")
	return f.Close()
}

// installDropIn writes the drop-in and keeps it only if sshd -t accepts
// the whole configuration with it; otherwise what was there before (the
// previous drop-in, or none) is put back.
func installDropIn(ctx context.Context, o Options) error {
	old, err := os.ReadFile(o.DropIn)
	hadOld := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.DropIn), 0o755); err != nil {
		return err
	}
	if err := writeAtomic(o.DropIn, []byte(DropInText(o)), 0o644); err != nil {
		return err
	}
	restore := func() error {
		if hadOld {
			return writeAtomic(o.DropIn, old, 0o644)
		}
		return os.Remove(o.DropIn)
	}
	if out, err := exec.CommandContext(ctx, o.SSHD, "-t", "-f", o.Config).CombinedOutput(); err != nil {
		if rerr := restore(); rerr != nil {
			return fmt.Errorf("sshd -t refused the drop-in (%v: %s), and putting back what was there failed: %w", err, bytes.TrimSpace(out), rerr)
		}
		return fmt.Errorf("sshd -t refused %s, so it is gone again and sshd's configuration is as it was: %w: %s", o.DropIn, err, bytes.TrimSpace(out))
	}
	// Both ways: the api user gets moat's lookups, and root (anyone else)
	// is untouched.
	if err := checkEffective(ctx, o); err != nil {
		if rerr := restore(); rerr != nil {
			return fmt.Errorf("%w; putting back what was there failed: %v", err, rerr)
		}
		return fmt.Errorf("%w; the drop-in is gone again", err)
	}
	return nil
}

// checkEffective asks sshd -T what the api user and root get.
func checkEffective(ctx context.Context, o Options) error {
	want := o.Moat + " api keys %u %t %k"
	for kw, w := range map[string]string{"authorizedkeyscommand": want, "authorizedprincipalscommand": o.Moat + " api principals %u %t %k"} {
		got, err := effective(ctx, o, o.User, kw)
		if err != nil {
			return err
		}
		if got != w {
			return fmt.Errorf("sshd -T: user %s gets %s %q, not %q: an earlier drop-in or Match block wins over moat's", o.User, kw, got, w)
		}
	}
	got, err := effective(ctx, o, "root", "authorizedkeyscommand")
	if err != nil {
		return err
	}
	if got == want {
		return errors.New("sshd -T: root would get moat's AuthorizedKeysCommand too: the Match block does not end where it should")
	}
	return nil
}

func effective(ctx context.Context, o Options, user, keyword string) (string, error) {
	out, err := exec.CommandContext(ctx, o.SSHD, "-T", "-f", o.Config, "-C", "user="+user+",host=moat-check,addr=127.0.0.1").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("sshd -T -C user=%s: %w: %s", user, err, bytes.TrimSpace(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == keyword {
			return v, nil
		}
	}
	return "", nil
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".moat-tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// reload makes a running sshd read its configuration: through systemd
// when it runs sshd, else SIGHUP to the pid in sshd's PidFile. An sshd
// that is not running is not an error: it reads the drop-in when it
// starts.
func reload(ctx context.Context, sshd string) (string, error) {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		for _, unit := range []string{"ssh.service", "sshd.service"} {
			if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", unit).Run() == nil {
				if out, err := exec.CommandContext(ctx, "systemctl", "reload", unit).CombinedOutput(); err != nil {
					return "", fmt.Errorf("systemctl reload %s: %w: %s", unit, err, bytes.TrimSpace(out))
				}
				return "systemctl reload " + unit, nil
			}
		}
	}
	out, err := exec.CommandContext(ctx, sshd, "-T", "-C", "user=root,host=moat-check,addr=127.0.0.1").Output()
	if err != nil {
		return "", fmt.Errorf("sshd -T: %w", err)
	}
	pidFile := "/run/sshd.pid"
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "pidfile "); ok {
			pidFile = v
		}
	}
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("sshd pid file %s: %w", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return "", nil
		}
		return "", fmt.Errorf("reload sshd (pid %d): %w", pid, err)
	}
	return fmt.Sprintf("SIGHUP to sshd (pid %d)", pid), nil
}
