package enroll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
)

// Exec runs moat's own command line (argv, after "moat") on a node through
// the operator's own OpenSSH client, as root (through sudo -n when the
// login is not root), with the caller's stdin, stdout and stderr. It
// returns the command's exit status. This is how an operator's `moat
// debug` reaches a node: with the operator's key, never the master's.
func Exec(ctx context.Context, access inventory.Access, extraSSH []string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := access.Validate(); err != nil {
		return 0, err
	}
	r := &remote{access: access, extra: extraSSH}
	args := append(r.sessionArgs(), access.Dest, "--", asRoot(argv))
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() == 255:
		return 255, fmt.Errorf("ssh %s failed (its message is above): %w", access.Dest, errs.ErrUnavailable)
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("ssh %s: %w", access.Dest, err)
}

// asRoot is a shell command line running moat with argv as root: directly
// when logged in as root, else through passwordless sudo.
func asRoot(argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	line := BinaryPath + " " + strings.Join(quoted, " ")
	return fmt.Sprintf(`if [ "$(id -u)" = 0 ]; then exec %s; else exec sudo -n %s; fi`, line, line)
}
