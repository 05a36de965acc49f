// Package enroll installs moat on a machine the operator can already SSH
// into, and removes it again. It drives the operator's own OpenSSH client,
// so ~/.ssh/config, ssh-agent, known_hosts, -i keys and jump hosts work as
// they do for ssh itself; one multiplexed connection carries every step.
package enroll

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
)

// remote runs commands on the machine through the operator's ssh.
type remote struct {
	access  inventory.Access
	extra   []string // more ssh options (-o ...)
	control string   // ControlMaster socket directory
	sudo    bool     // prefix commands with sudo -n (not logged in as root)
}

func newRemote(a inventory.Access, extra []string) (*remote, error) {
	dir, err := os.MkdirTemp("", "moat-ssh-")
	if err != nil {
		return nil, err
	}
	return &remote{access: a, extra: extra, control: dir}, nil
}

// args are the ssh options every invocation shares. BatchMode: enrolment
// must not stop at a password prompt nobody sees; the multiplexed master
// connection saves a handshake per step.
func (r *remote) args() []string {
	a := []string{
		"-o", "BatchMode=yes",
		"-o", "ControlMaster=auto", "-o", "ControlPath=" + filepath.Join(r.control, "%C"), "-o", "ControlPersist=60",
	}
	return append(a, r.sessionArgs()...)
}

// sessionArgs are the options of one plain connection as the operator:
// the access recorded at enrolment, and the extra options.
func (r *remote) sessionArgs() []string {
	a := []string{"-o", "ConnectTimeout=10"}
	if r.access.SSHConfig != "" {
		a = append(a, "-F", r.access.SSHConfig)
	}
	if r.access.Port != 0 {
		a = append(a, "-p", strconv.Itoa(r.access.Port))
	}
	if r.access.Identity != "" {
		a = append(a, "-i", r.access.Identity, "-o", "IdentitiesOnly=yes")
	}
	if r.access.Jump != "" {
		a = append(a, "-J", r.access.Jump)
	}
	return append(a, r.extra...)
}

// run runs a shell command line on the machine (as root, through sudo if
// needed) with stdin, and returns its stdout.
func (r *remote) run(ctx context.Context, stdin io.Reader, command string) (string, error) {
	if r.sudo {
		command = "sudo -n sh -c " + shellQuote(command)
	}
	args := append(r.args(), r.access.Dest, "--", command)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	var out, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 255 {
			return out.String(), fmt.Errorf("ssh %s: %s: %w", r.access.Dest, msg, errs.ErrUnavailable)
		}
		return out.String(), fmt.Errorf("on %s: %s: %s", r.access.Dest, firstLine(command), msg)
	}
	return out.String(), nil
}

// runFresh is run on a new connection of its own, as the operator would
// log in: not through the multiplexed connection.
func (r *remote) runFresh(ctx context.Context, command string) (string, error) {
	fresh := &remote{access: r.access, sudo: r.sudo,
		extra: append([]string{"-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none"}, r.extra...)}
	if fresh.sudo {
		command = "sudo -n sh -c " + shellQuote(command)
	}
	args := append(fresh.sessionArgs(), r.access.Dest, "--", command)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ssh %s: %s: %w", r.access.Dest, strings.TrimSpace(stderr.String()), err)
	}
	return out.String(), nil
}

// writeFile writes content to path on the machine atomically.
func (r *remote) writeFile(ctx context.Context, path string, mode os.FileMode, content []byte) error {
	tmp := path + ".moat-tmp"
	cmd := fmt.Sprintf("umask 077 && mkdir -p %s && cat > %s && chmod %o %s && mv -f %s %s",
		shellQuote(filepath.Dir(path)), shellQuote(tmp), mode, shellQuote(tmp), shellQuote(tmp), shellQuote(path))
	_, err := r.run(ctx, bytes.NewReader(content), cmd)
	return err
}

// sftp opens the machine's own sftp subsystem.
func (r *remote) sftp(ctx context.Context) (*sftp.Client, func(), error) {
	args := append(r.args(), "-s", r.access.Dest, "sftp")
	cmd := exec.CommandContext(ctx, "ssh", args...)
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	rd, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	client, err := sftp.NewClientPipe(rd, w, sftp.UseConcurrentWrites(true))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("sftp to %s: %v: %s", r.access.Dest, err, strings.TrimSpace(stderr.String()))
	}
	return client, func() { client.Close(); cmd.Wait() }, nil
}

// effective asks ssh where it would really connect (after ~/.ssh/config):
// the host name and port, for the master's own connection.
func (r *remote) effective(ctx context.Context) (host string, port int, err error) {
	args := append(r.args(), "-G", r.access.Dest)
	out, err := exec.CommandContext(ctx, "ssh", args...).Output()
	if err != nil {
		return "", 0, fmt.Errorf("ssh -G %s: %w", r.access.Dest, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "hostname":
			host = v
		case "port":
			port, _ = strconv.Atoi(v)
		}
	}
	return host, port, nil
}

// close ends the multiplexed connection.
func (r *remote) close() {
	args := append(r.args(), "-O", "exit", r.access.Dest)
	exec.Command("ssh", args...).Run()
	os.RemoveAll(r.control)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 60 {
		line = line[:60] + "..."
	}
	return line
}
