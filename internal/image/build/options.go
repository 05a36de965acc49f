package build

import (
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/privilege"
)

// defaultPath is the PATH given to images whose Env does not set one.
const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// normalize validates opts and fills in the defaults Build documents. It checks
// everything that does not need the source files; the layer is checked later.
func normalize(opts Options) (Options, error) {
	if len(opts.Files) == 0 && len(opts.Binaries) == 0 && len(opts.Entrypoint) == 0 {
		return opts, errs.Invalid("", "nothing to build: add a file with --add or --add-binary, or set an entrypoint")
	}
	for _, f := range slices.Concat(opts.Files, opts.Binaries) {
		if err := checkFile(f); err != nil {
			return opts, err
		}
	}
	if len(opts.Entrypoint) > 0 && !path.IsAbs(opts.Entrypoint[0]) {
		return opts, errs.Invalid("entrypoint", "%q: want an absolute path such as /app", opts.Entrypoint[0])
	}
	env, err := normalizeEnv(opts.Env)
	if err != nil {
		return opts, err
	}
	opts.Env = env
	if err := checkUser(opts.User); err != nil {
		return opts, err
	}
	if opts.WorkDir != "" && (!path.IsAbs(opts.WorkDir) || path.Clean(opts.WorkDir) != opts.WorkDir) {
		return opts, errs.Invalid("workdir", "%q: want an absolute, clean path", opts.WorkDir)
	}
	ports, err := normalizePorts(opts.Ports)
	if err != nil {
		return opts, err
	}
	opts.Ports = ports
	for k := range opts.Labels {
		if k == "" {
			return opts, errs.Invalid("label", "empty key")
		}
	}
	if err := normalizePrivileges(&opts); err != nil {
		return opts, err
	}
	if strings.ContainsFunc(opts.Name, isSpaceOrControl) {
		return opts, errs.Invalid("name", "%q: contains white space or control characters", opts.Name)
	}
	if opts.UID < 0 || opts.GID < 0 {
		return opts, errs.Invalid("owner", "%d:%d: want non-negative ids", opts.UID, opts.GID)
	}
	return withPlatformAndTime(opts)
}

func withPlatformAndTime(opts Options) (Options, error) {
	if opts.OS == "" {
		opts.OS = "linux"
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Created.IsZero() {
		opts.Created = time.Unix(0, 0)
	}
	if opts.Created.Before(time.Unix(0, 0)) {
		return opts, errs.Invalid("created", "%s is before 1970", opts.Created.Format(time.RFC3339))
	}
	// Tar headers hold whole seconds; the config uses the same instant.
	opts.Created = opts.Created.Truncate(time.Second).UTC()
	return opts, nil
}

func checkFile(f File) error {
	if f.Src == "" {
		return errs.Invalid("file", "destination %q: empty source path", f.Dst)
	}
	if err := checkDst(f.Dst); err != nil {
		return errs.Invalid("file", "%v", err)
	}
	if f.Mode&^fs.ModePerm != 0 {
		return errs.Invalid("file", "destination %q: mode %v: only permission bits are allowed", f.Dst, f.Mode)
	}
	return nil
}

// normalizeEnv checks that every entry is K=V with a unique K and puts the
// default PATH first when none is given.
func normalizeEnv(env []string) ([]string, error) {
	seen := make(map[string]bool, len(env))
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errs.Invalid("env", "%q: want KEY=VALUE", kv)
		}
		if seen[k] {
			return nil, errs.Invalid("env", "%q set twice", k)
		}
		seen[k] = true
	}
	if seen["PATH"] {
		return env, nil
	}
	return append([]string{defaultPath}, env...), nil
}

// checkUser accepts "", "uid" and "uid:gid", all numeric: the image has no
// /etc/passwd to look names up in.
func checkUser(user string) error {
	if user == "" {
		return nil
	}
	uid, gid, hasGID := strings.Cut(user, ":")
	if !isID(uid) || (hasGID && !isID(gid)) {
		return errs.Invalid("user", "%q: want a numeric uid or uid:gid such as 1000:1000 (user names are not supported)", user)
	}
	return nil
}

func isID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// normalizePorts accepts "PORT" and "PORT/PROTO" and returns "PORT/proto",
// with tcp when no protocol is given.
func normalizePorts(ports []string) ([]string, error) {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, errs.Invalid("port", "%q: want PORT[/tcp|udp|sctp] such as 8080/tcp", p)
		}
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// normalizePrivileges checks the declared privileges, those given as such
// and any written as a label by hand, and writes them as one label in
// canonical form: the same privileges give the same digest.
func normalizePrivileges(opts *Options) error {
	set, err := privilege.ParseList(opts.Privileges)
	if err != nil {
		return errs.Invalid("privilege", "%v", err)
	}
	if v, ok := opts.Labels[privilege.Label]; ok {
		more, err := privilege.Parse(v)
		if err != nil {
			return errs.Invalid("label "+privilege.Label, "%v", err)
		}
		for p := range more {
			set[p] = true
		}
	}
	labels := map[string]string{}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	delete(labels, privilege.Label)
	if len(set) > 0 {
		labels[privilege.Label] = set.String()
	}
	if len(labels) == 0 {
		labels = nil
	}
	opts.Labels, opts.Privileges = labels, nil
	return nil
}
