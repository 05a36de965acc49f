package enroll

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
)

// Where the node's own settings and signing policy live. Only the
// operator's SSH access writes them: the master's key reaches neither.
const (
	NodeConf       = nodeapi.ConfigFile
	AllowedSigners = nodeapi.AllowedSigners
)

// checkSigning refuses a node that would require signatures but trust no
// signer, and an allowed signers file a node could not read.
func checkSigning(opts Options) error {
	if !opts.RequireSigned {
		return nil
	}
	if len(opts.AllowedSigners) == 0 {
		return errs.Invalid("allowed-signers", "nodes run only signed images, so they need the keys allowed to sign them: pass --allowed-signers FILE (OpenSSH allowed_signers format), or --allow-unsigned")
	}
	signers, err := sign.ParseAllowedSigners(opts.AllowedSigners)
	if err != nil {
		return errs.Invalid("allowed-signers", "%v", err)
	}
	if len(signers) == 0 {
		return errs.Invalid("allowed-signers", "the file lists no signer")
	}
	return nil
}

// installSigning writes the allowed signers and the node's require-signed
// setting, and says whether the daemon must restart to see the setting
// (the signers file is read afresh at every check).
func installSigning(ctx context.Context, r *remote, opts Options) (bool, error) {
	if len(opts.AllowedSigners) > 0 {
		current, err := r.run(ctx, nil, "cat "+AllowedSigners+" 2>/dev/null || true")
		if err != nil {
			return false, err
		}
		if current != string(opts.AllowedSigners) {
			if err := r.writeFile(ctx, AllowedSigners, 0o644, opts.AllowedSigners); err != nil {
				return false, fmt.Errorf("install allowed signers: %w", err)
			}
		}
	}
	conf, err := r.run(ctx, nil, "cat "+NodeConf+" 2>/dev/null || true")
	if err != nil {
		return false, err
	}
	updated := setting(conf, "require-signed", strconv.FormatBool(opts.RequireSigned))
	if updated == conf {
		return false, nil
	}
	if err := r.writeFile(ctx, NodeConf, 0o644, []byte(updated)); err != nil {
		return false, fmt.Errorf("write %s: %w", NodeConf, err)
	}
	return true, nil
}

// setting sets name=value in a node.conf text, replacing an earlier value
// and keeping every other line. Pure.
func setting(conf, name, value string) string {
	var out []string
	done := false
	for _, line := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == name {
			if !done {
				out = append(out, name+"="+value)
				done = true
			}
			continue
		}
		if line != "" || len(out) > 0 {
			out = append(out, line)
		}
	}
	if !done {
		out = append(out, name+"="+value)
	}
	return strings.Join(out, "\n") + "\n"
}
