package build

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// ParseAdd parses the --add flag value SRC:DST[:MODE], MODE being octal
// permission bits such as 0755. Paths containing ':' cannot be given this way.
func ParseAdd(s string) (File, error) {
	field := fmt.Sprintf("--add %q", s)
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return File{}, errs.Invalid(field, "want SRC:DST[:MODE]")
	}
	f := File{Src: parts[0], Dst: parts[1]}
	if err := checkDst(f.Dst); err != nil {
		return File{}, errs.Invalid(field, "%v", err)
	}
	if len(parts) == 3 {
		m, err := parseMode(parts[2])
		if err != nil {
			return File{}, errs.Invalid(field, "%v", err)
		}
		f.Mode = m
	}
	return f, nil
}

// parseMode parses octal permission bits; setuid, setgid and sticky are refused
// because images built here never carry them.
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("mode %q: want octal permission bits such as 0755", s)
	}
	if n == 0 || n > 0o777 {
		return 0, fmt.Errorf("mode %q: want permission bits between 0001 and 0777 (no setuid, setgid or sticky)", s)
	}
	return fs.FileMode(n), nil
}

// checkDst reports why dst is not usable as a path in the image: it must be
// absolute and clean, which also rules out "..".
func checkDst(dst string) error {
	if !path.IsAbs(dst) {
		return fmt.Errorf("destination %q: want an absolute path such as /app", dst)
	}
	if slices.Contains(strings.Split(dst, "/"), "..") {
		return fmt.Errorf("destination %q: \"..\" is not allowed", dst)
	}
	if c := path.Clean(dst); c != dst {
		return fmt.Errorf("destination %q: not clean, want %q", dst, c)
	}
	return nil
}
