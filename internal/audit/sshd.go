package audit

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
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

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
