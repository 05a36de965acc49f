package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// ResolveUser turns "uid[:gid]" or "name[:group]" into numeric IDs, using the
// image's /etc/passwd and /etc/group contents (either may be nil: minimal
// images have none). A uid without a group takes its passwd entry's group,
// or a group of the same number: never root's group by accident.
func ResolveUser(spec string, passwd, group []byte) (uid, gid uint32, err error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	uid, primary, err := lookupUser(userPart, passwd)
	if err != nil {
		return 0, 0, err
	}
	if !hasGroup {
		return uid, primary, nil
	}
	gid, err = lookupGroup(groupPart, group)
	return uid, gid, err
}

func lookupUser(name string, passwd []byte) (uid, gid uint32, err error) {
	if n, ok := parseID(name); ok {
		for _, f := range records(passwd, 7) {
			if f[2] == name {
				if g, ok := parseID(f[3]); ok {
					return n, g, nil
				}
			}
		}
		return n, n, nil
	}
	for _, f := range records(passwd, 7) {
		if f[0] == name {
			u, ok1 := parseID(f[2])
			g, ok2 := parseID(f[3])
			if ok1 && ok2 {
				return u, g, nil
			}
		}
	}
	return 0, 0, errs.Invalid("user", "user %q is not in the image's /etc/passwd; use a numeric uid", name)
}

func lookupGroup(name string, group []byte) (uint32, error) {
	if n, ok := parseID(name); ok {
		return n, nil
	}
	for _, f := range records(group, 4) {
		if f[0] == name {
			if g, ok := parseID(f[2]); ok {
				return g, nil
			}
		}
	}
	return 0, errs.Invalid("user", "group %q is not in the image's /etc/group; use a numeric gid", name)
}

// records splits colon-separated lines having at least n fields.
func records(data []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// String forms used in errors and inspect output.
func formatUser(uid, gid uint32) string { return fmt.Sprintf("%d:%d", uid, gid) }
