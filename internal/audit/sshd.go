package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/moatcloud/moat/internal/hardening"
)

// ParseSSHDT parses `sshd -T` output ("key value" lines, keys lowercase).
// A key sshd prints on several lines (port, listenaddress) gets its values
// joined with a space, in order.
func ParseSSHDT(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		}
		key = strings.ToLower(key)
		if old, ok := m[key]; ok {
			val = old + " " + val
		}
		m[key] = val
	}
	return m
}

// sshdFallback is where Debian and most distributions install sshd, which
// is often not on a daemon's PATH.
const sshdFallback = "/usr/sbin/sshd"

// execSSHDT runs `sshd -T` and returns its output. sshd -T needs root and
// the host keys; its complaint on stderr becomes part of the error.
func execSSHDT(ctx context.Context) ([]byte, error) {
	path, err := exec.LookPath("sshd")
	if err != nil {
		path = sshdFallback
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-T")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, firstLine(msg))
		}
		return nil, fmt.Errorf("run %s -T: %w", path, err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("run %s -T: no output", path)
	}
	return out, nil
}

// readDropIn reads moat's sshd drop-in.
func readDropIn() (string, error) {
	b, err := os.ReadFile(hardening.DropIn)
	return string(b), err
}

// hardeningState says whether moat's drop-in is in force, and a finding
// when it is not.
func hardeningState(text string, err error, effective map[string]string) (string, *Finding) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not installed", &Finding{sevWarn, "moat's sshd hardening is not installed (" + hardening.DropIn + "): moat node add installs it"}
	case err != nil:
		return "unknown", &Finding{sevWarn, "could not read " + hardening.DropIn + ": " + err.Error()}
	}
	if off := hardening.NotInForce(hardening.ParseText(text), effective); len(off) > 0 {
		why := "not in force: " + strings.Join(off, "; ")
		return why, &Finding{sevWarn, "moat's sshd hardening is " + why + " (does sshd_config include " + hardening.DropInDir + " first?)"}
	}
	return "in force", nil
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
