package runtime

import (
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Resolve merges a request with its image's config and applies moat's
// defaults. The user is resolved separately (ResolveUser), because names
// need the image's /etc/passwd. Pure: no I/O.
func Resolve(id string, req nodeapi.ContainerSpec, img ocispec.ImageConfig, cgroupParent string) Config {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if len(req.Entrypoint) > 0 {
		// A new entrypoint makes the image's cmd meaningless, as in Docker.
		entrypoint, cmd = req.Entrypoint, nil
	}
	if len(req.Cmd) > 0 {
		cmd = req.Cmd
	}
	sec := req.Security
	// What the image declares, less what the request drops; whether the
	// request may ask for more was decided before (package privilege).
	declared, _ := privilege.Declared(img.Labels)
	drop, _ := privilege.ParseList(sec.Drop)
	g := privilege.Effective(declared, PrivilegeRequest(sec), drop)
	c := Config{
		ID:             id,
		Args:           append(append([]string{}, entrypoint...), cmd...),
		Env:            mergeEnv(img.Env, req.Env),
		Cwd:            firstNonEmpty(req.WorkDir, img.WorkingDir, "/"),
		Hostname:       req.Hostname,
		ReadOnlyRootfs: !g.WritableRoot,
		NoNewPrivs:     !g.NewPrivileges,
		Tmp:            !sec.NoTmp,
		Seccomp:        !g.SeccompUnconfined,
		HostNetwork:    g.HostNetwork,
		Caps:           g.Caps,
		MemoryBytes:    req.Resources.MemoryBytes,
		MilliCPU:       req.Resources.MilliCPU,
		Pids:           req.Resources.Pids,
		CgroupsPath:    path.Join("/", cgroupParent, id),
		Annotations:    map[string]string{"moat.container": id},
	}
	for _, m := range req.Mounts {
		c.Mounts = append(c.Mounts, Mount{Type: firstNonEmpty(m.Type, "bind"), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Size: m.Size})
	}
	return c
}

// UserSpec is the user a container runs as before lookup: the request's,
// else the image's, else nobody. An image that says nothing gets nobody,
// never root.
func UserSpec(req nodeapi.ContainerSpec, img ocispec.ImageConfig) string {
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

// PrivilegeRequest is what a request's security settings ask of package
// privilege.
func PrivilegeRequest(sec nodeapi.Security) privilege.Request {
	return privilege.Request{
		CapAdd: sec.CapAdd, ReadOnlyRootfs: sec.ReadOnlyRootfs, NoNewPrivileges: sec.NoNewPrivileges,
		Seccomp: sec.Seccomp, Network: sec.Network, Drop: sec.Drop,
	}
}
