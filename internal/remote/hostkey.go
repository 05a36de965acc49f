package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/moatcloud/moat/internal/errs"
)

// HostKeyError is a master's host key that ssh refused: unknown to
// known_hosts, or different from what it holds.
type HostKeyError struct {
	Master  string   // as the operator named it
	Host    string   // as known_hosts names it, e.g. [203.0.113.7]:2222
	Offered string   // the fingerprint the host offered ("" if unseen)
	Known   []string // fingerprints known_hosts holds for it, with where
	// SSH is the ssh command moat runs and its destination arguments
	// (-p PORT DEST), for the command that accepts the key; default
	// "ssh Master".
	SSH []string
	// Files are the known_hosts files holding Known.
	Files []string
}

func (e *HostKeyError) Error() string {
	offered := e.Offered
	if offered == "" {
		offered = "unknown (ssh did not show it)"
	}
	known := "none: not in known_hosts"
	what, accept := "is not in known_hosts", ""
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
		what = "has CHANGED"
		accept = fmt.Sprintf("ssh-keygen -R '%s' && ", e.Host)
		if len(e.Files) > 0 {
			accept = ""
			for _, f := range e.Files {
				accept += fmt.Sprintf("ssh-keygen -f '%s' -R '%s' && ", f, e.Host)
			}
		}
	}
	// The ssh command as moat runs it (its -F, the port): the one that
	// then finds the key in the same known_hosts.
	ssh := []string{"ssh", "-o", "StrictHostKeyChecking=accept-new", "-n", e.Master}
	if len(e.SSH) > 1 {
		ssh = append([]string{e.SSH[0], "-o", "StrictHostKeyChecking=accept-new", "-n"}, e.SSH[1:]...)
	}
	return fmt.Sprintf("master %s: refused: the host key of %s %s\n"+
		"  offered by the host:  %s\n"+
		"  known_hosts has:      %s\n"+
		"check the offered fingerprint out-of-band (on the master: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then accept it with:\n"+
		"  %s%s true",
		e.Master, e.Host, what, offered, known, accept, strings.Join(ssh, " "))
}

// Unwrap: a refused host key is a refusal, not an outage.
func (e *HostKeyError) Unwrap() error { return errs.ErrForbidden }

var (
	unknownRE = regexp.MustCompile(`No \S+ host key is known for (\S+) and`)
	changedRE = regexp.MustCompile(`Host key for (\S+) has changed`)
	sentRE    = regexp.MustCompile(`key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+)`)
	verboseRE = regexp.MustCompile(`Server host key: \S+ (SHA256:[A-Za-z0-9+/=]+)`)
)

// hostKeyError explains ssh's refusal (its stderr, msg): which host, what
// it offered (from the message, else from a verbose attempt that stops at
// the same check), and what known_hosts holds for that host.
func (m *Master) hostKeyError(ctx context.Context, msg string) error {
	e := &HostKeyError{Master: m.Name(), Host: m.Name(), SSH: append(slices.Clone(m.SSH), m.Access.Dest)}
	if m.Access.Port != 0 {
		e.SSH = append(slices.Clone(m.SSH), "-p", strconv.Itoa(m.Access.Port), m.Access.Dest)
	}
	if s := unknownRE.FindStringSubmatch(msg); s != nil {
		e.Host = s[1]
	} else if s := changedRE.FindStringSubmatch(msg); s != nil {
		e.Host = s[1]
	}
	if s := sentRE.FindStringSubmatch(msg); s != nil {
		e.Offered = strings.TrimSuffix(s[1], ".")
	} else {
		e.Offered = m.offeredKey(ctx)
	}
	files, err := m.knownHostsFiles(ctx)
	if err == nil {
		e.Known, e.Files, err = knownKeys(e.Host, files)
	}
	if err != nil {
		e.Known = []string{fmt.Sprintf("unreadable (%v)", err)}
	}
	return e
}

// offeredKey connects once more, verbosely and without the shared
// connection, to see the key the host offers; ssh refuses it again
// before authenticating. The last key shown is the refused one (a jump
// host's comes first).
func (m *Master) offeredKey(ctx context.Context) string {
	args := append(m.args(), "-v", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-n", m.Access.Dest, Command)
	out, _ := exec.CommandContext(ctx, m.SSH[0], args...).CombinedOutput()
	all := verboseRE.FindAllStringSubmatch(string(out), -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1][1]
}

// knownHostsFiles are the known_hosts files ssh reads for the master
// (ssh -G: after ~/.ssh/config).
func (m *Master) knownHostsFiles(ctx context.Context) ([]string, error) {
	args := append(m.args(), "-G", m.Access.Dest)
	out, err := exec.CommandContext(ctx, m.SSH[0], args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ssh -G %s: %w", m.Access.Dest, err)
	}
	home, _ := os.UserHomeDir()
	var files []string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if k != "userknownhostsfile" && k != "globalknownhostsfile" {
			continue
		}
		for _, f := range strings.Fields(v) {
			if rest, ok := strings.CutPrefix(f, "~/"); ok && home != "" {
				f = filepath.Join(home, rest)
			}
			if _, err := os.Stat(f); err == nil {
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// knownKeys lists the keys the files hold for host (as ssh names it,
// HOST or [HOST]:PORT), as "SHA256:... (FILE:LINE)", and the files that
// hold them.
func knownKeys(host string, files []string) ([]string, []string, error) {
	if len(files) == 0 {
		return nil, nil, nil
	}
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "22")
	}
	check, err := knownhosts.New(files...)
	if err != nil {
		return nil, nil, err
	}
	// A key no host has: the check fails and lists what it wanted.
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil, nil, err
	}
	err = check(addr, &net.TCPAddr{IP: net.IPv4zero, Port: 22}, probe)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil, nil, err
	}
	var known, in []string
	for _, k := range ke.Want {
		known = append(known, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		if !slices.Contains(in, k.Filename) {
			in = append(in, k.Filename)
		}
	}
	return known, in, nil
}
