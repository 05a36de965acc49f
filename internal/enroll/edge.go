package enroll

import (
	"context"
	"fmt"
	"strings"
)

// installEdge makes the node an edge (edge=true in node.conf) or not
// (the line removed), through the operator's SSH access: the master's key
// cannot, so a compromised master cannot open ports on nodes. nil leaves
// node.conf as the operator wrote it. It says whether the daemon must
// restart to see the change.
func installEdge(ctx context.Context, r *remote, edge *bool) (bool, error) {
	if edge == nil {
		return false, nil
	}
	conf, err := r.run(ctx, nil, "cat "+NodeConf+" 2>/dev/null || true")
	if err != nil {
		return false, err
	}
	updated := unsetting(conf, "edge")
	if *edge {
		updated = setting(conf, "edge", "true")
	}
	if updated == conf {
		return false, nil
	}
	if err := r.writeFile(ctx, NodeConf, 0o644, []byte(updated)); err != nil {
		return false, fmt.Errorf("write %s: %w", NodeConf, err)
	}
	return true, nil
}

// unsetting removes every name=... line from a node.conf text, keeping
// every other line. Pure.
func unsetting(conf, name string) string {
	var out []string
	removed := false
	for _, line := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == name {
			removed = true
			continue
		}
		out = append(out, line)
	}
	if !removed {
		return conf
	}
	if len(out) == 0 || (len(out) == 1 && out[0] == "") {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}
