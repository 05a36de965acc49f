package runtime

import (
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/privilege"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Request is what a container is asked to be, beyond its image: the node
// API's request as the runtime needs it (the node converts one into the
// other, so the runtime depends on no wire type).
type Request struct {
	Entrypoint, Cmd, Env        []string
	WorkDir, User, Hostname     string
	Mounts                      []Mount // Type "" is a bind mount
	MemoryBytes, MilliCPU, Pids int64
	NoTmp                       bool              // no tmpfs on /tmp
	Privileges                  privilege.Request // asked beyond the defaults, and dropped
}

// Resolve merges a request with its image's config and applies moat's
// defaults. The user is resolved separately (ResolveUser), because names
// need the image's /etc/passwd. Pure: no I/O.
func Resolve(id string, req Request, img ocispec.ImageConfig, cgroupParent string) Config {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if len(req.Entrypoint) > 0 {
		// A new entrypoint makes the image's cmd meaningless, as in Docker.
		entrypoint, cmd = req.Entrypoint, nil
	}
	if len(req.Cmd) > 0 {
		cmd = req.Cmd
	}
	// What the image declares, less what the request drops; whether the
	// request may ask for more was decided before (package privilege).
	declared, _ := privilege.Declared(img.Labels)
	drop, _ := privilege.ParseList(req.Privileges.Drop)
	g := privilege.Effective(declared, req.Privileges, drop)
	c := Config{
		ID:             id,
		Args:           append(append([]string{}, entrypoint...), cmd...),
		Env:            mergeEnv(img.Env, req.Env),
		Cwd:            firstNonEmpty(req.WorkDir, img.WorkingDir, "/"),
		Hostname:       req.Hostname,
		ReadOnlyRootfs: !g.WritableRoot,
		NoNewPrivs:     !g.NewPrivileges,
		Tmp:            !req.NoTmp,
		Seccomp:        !g.SeccompUnconfined,
		HostNetwork:    g.HostNetwork,
		Caps:           g.Caps,
		MemoryBytes:    req.MemoryBytes,
		MilliCPU:       req.MilliCPU,
		Pids:           req.Pids,
		CgroupsPath:    path.Join("/", cgroupParent, id),
		Annotations:    map[string]string{"moat.container": id},
	}
	for _, m := range req.Mounts {
		m.Type = firstNonEmpty(m.Type, "bind")
		c.Mounts = append(c.Mounts, m)
	}
	return c
}

// UserSpec is the user a container runs as before lookup: the request's,
// else the image's, else nobody. An image that says nothing gets nobody,
// never root.
func UserSpec(req Request, img ocispec.ImageConfig) string {
	return firstNonEmpty(req.User, img.User, NobodyUser)
}

// NobodyUser is the user of a container that names none.
const NobodyUser = "65534:65534"

// mergeEnv overlays request variables on the image's, keeping order and
// making sure PATH is set.
func mergeEnv(base, over []string) []string {
	out := []string{}
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), over...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append([]string{defaultPath}, out...)
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
