package node

import (
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/runtime"
)

// runtimeRequest is an API request as the runtime takes it.
func runtimeRequest(s nodeapi.ContainerSpec) runtime.Request {
	r := runtime.Request{
		Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: s.Env, WorkDir: s.WorkDir, User: s.User, Hostname: s.Hostname,
		MemoryBytes: s.Resources.MemoryBytes, MilliCPU: s.Resources.MilliCPU, Pids: s.Resources.Pids,
		NoTmp: s.Security.NoTmp, Privileges: privilegeRequest(s.Security),
	}
	for _, m := range s.Mounts {
		r.Mounts = append(r.Mounts, runtime.Mount{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Size: m.Size})
	}
	return r
}

// privilegeRequest is what a request's security settings ask of package
// privilege.
func privilegeRequest(sec nodeapi.Security) privilege.Request {
	return privilege.Request{
		CapAdd: sec.CapAdd, ReadOnlyRootfs: sec.ReadOnlyRootfs, NoNewPrivileges: sec.NoNewPrivileges,
		Seccomp: sec.Seccomp, Network: sec.Network, Drop: sec.Drop,
	}
}
