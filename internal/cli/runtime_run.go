package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/quantity"
)

// runFlags are `moat runtime run`'s flags, turned into a ContainerSpec.
type runFlags struct {
	spec                              nodeapi.ContainerSpec
	entrypoint, memory, cpus, restart string
	stopTimeout                       string
	ports, mounts, tmpfs, labels      []string
	readWrite, allowNewPrivs, noStart bool
}

func (r *runtimeCtx) runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [-- ARGS...]",
		Short: "Create and start a container",
		Long: `Create and start a container from an image in the node's store.

Defaults are strict: read-only root, tmpfs /tmp, user 65534 unless the image
names one, no new privileges, no capabilities, Docker's default seccomp
profile, its own pid/ipc/uts/mount/network namespaces with only loopback,
and memory (256Mi), CPU (1 core) and pids (512) limits. Flags override each.`,
		Example: "  moat runtime run --name web --port 8080 --memory 64Mi demo:1\n  moat runtime run --restart on-failure:3 demo:1 -- --verbose",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.spec.Image = args[0]
			if len(args) > 1 {
				f.spec.Cmd = args[1:]
			}
			spec, err := f.toSpec()
			if err != nil {
				return usageError{err}
			}
			c, err := r.client().CreateContainer(cmd.Context(), spec, !f.noStart)
			if err != nil {
				return err
			}
			if r.json {
				return printJSON(r.stdout, c)
			}
			fmt.Fprintln(r.stdout, c.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	s := &f.spec
	fl.StringVar(&s.Name, "name", "", "container name (default: generated)")
	fl.StringArrayVarP(&s.Env, "env", "e", nil, "environment variable K=V (repeatable)")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "program to run instead of the image's entrypoint")
	fl.StringVarP(&s.WorkDir, "workdir", "w", "", "working directory")
	fl.StringVarP(&s.User, "user", "u", "", "uid[:gid] or name (default: the image's, else 65534)")
	fl.StringVar(&s.Hostname, "hostname", "", "hostname (default: the container name)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit, e.g. 64Mi (default 256Mi)")
	fl.StringVar(&f.cpus, "cpus", "", "CPU limit in cores (0.5) or millicores (500m) (default 1)")
	fl.Int64Var(&s.Resources.Pids, "pids", 0, "process limit (default 512)")
	fl.StringVar(&f.restart, "restart", "no", "restart policy: no, on-failure[:MAX], always")
	fl.StringVar(&f.stopTimeout, "stop-timeout", "", "grace period between SIGTERM and SIGKILL (default 10s)")
	fl.StringArrayVarP(&f.ports, "port", "p", nil, "declare a container port: [NAME=]PORT[/udp] (repeatable)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "bind a host directory: SRC:DST[:ro] (repeatable)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: DST[:SIZE] (repeatable)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "label K=V (repeatable)")
	fl.BoolVar(&f.readWrite, "read-write", false, "make the root filesystem writable (default read-only)")
	fl.BoolVar(&s.Security.NoTmp, "no-tmp", false, "do not mount the default tmpfs on /tmp")
	fl.BoolVar(&f.allowNewPrivs, "allow-new-privileges", false, "allow setuid binaries to raise privileges")
	fl.StringArrayVar(&s.Security.CapAdd, "cap-add", nil, "add a Linux capability (repeatable)")
	fl.StringVar(&s.Security.Seccomp, "seccomp", "", "seccomp profile: default or unconfined")
	fl.StringVar(&s.Security.Network, "network", "", "network: none (loopback only, default) or host")
	fl.BoolVar(&f.noStart, "no-start", false, "create only")
	return cmd
}

func (f *runFlags) toSpec() (nodeapi.ContainerSpec, error) {
	s := f.spec
	var err error
	if f.entrypoint != "" {
		s.Entrypoint = []string{f.entrypoint}
	}
	if f.memory != "" {
		if s.Resources.MemoryBytes, err = quantity.ParseBytes(f.memory); err != nil {
			return s, fmt.Errorf("--memory: %w", err)
		}
	}
	if f.cpus != "" {
		if s.Resources.MilliCPU, err = quantity.ParseMilliCPU(f.cpus); err != nil {
			return s, fmt.Errorf("--cpus: %w", err)
		}
	}
	if s.Restart, err = parseRestart(f.restart); err != nil {
		return s, err
	}
	if f.stopTimeout != "" {
		var d nodeapi.Duration
		if err := d.UnmarshalJSON([]byte(strconv.Quote(f.stopTimeout))); err != nil {
			return s, fmt.Errorf("--stop-timeout %q: want a duration such as 10s", f.stopTimeout)
		}
		s.StopTimeout = d
	}
	for _, p := range f.ports {
		port, err := parsePort(p)
		if err != nil {
			return s, err
		}
		s.Ports = append(s.Ports, port)
	}
	for _, m := range f.mounts {
		src, rest, ok := strings.Cut(m, ":")
		dst, mode, _ := strings.Cut(rest, ":")
		if !ok || (mode != "" && mode != "ro" && mode != "rw") {
			return s, fmt.Errorf("--mount %q: want SRC:DST[:ro]", m)
		}
		s.Mounts = append(s.Mounts, nodeapi.Mount{Source: src, Target: dst, ReadOnly: mode == "ro"})
	}
	for _, t := range f.tmpfs {
		dst, size, _ := strings.Cut(t, ":")
		m := nodeapi.Mount{Type: "tmpfs", Target: dst}
		if size != "" {
			if m.Size, err = quantity.ParseBytes(size); err != nil {
				return s, fmt.Errorf("--tmpfs %q: %w", t, err)
			}
		}
		s.Mounts = append(s.Mounts, m)
	}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return s, fmt.Errorf("--label %q: want K=V", l)
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	if f.readWrite {
		no := false
		s.Security.ReadOnlyRootfs = &no
	}
	if f.allowNewPrivs {
		no := false
		s.Security.NoNewPrivileges = &no
	}
	for i, c := range s.Security.CapAdd {
		if _, ok := privilege.Cap(c); !ok {
			return s, errs.Invalid(fmt.Sprintf("security.capAdd[%d]", i), "%q is not a Linux capability", c)
		}
	}
	return s, s.Validate()
}

func parseRestart(v string) (nodeapi.RestartPolicy, error) {
	policy, max, hasMax := strings.Cut(v, ":")
	p := nodeapi.RestartPolicy{Policy: policy}
	if hasMax {
		n, err := strconv.Atoi(max)
		if err != nil || n < 0 || policy != nodeapi.RestartOnFailure {
			return p, fmt.Errorf("--restart %q: want no, on-failure[:MAX] or always", v)
		}
		p.MaxRetries = n
	}
	return p, nil
}

func parsePort(v string) (nodeapi.Port, error) {
	name, rest, hasName := strings.Cut(v, "=")
	if !hasName {
		name, rest = "", v
	}
	num, proto, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(num)
	if err != nil {
		return nodeapi.Port{}, fmt.Errorf("--port %q: want [NAME=]PORT[/udp]", v)
	}
	return nodeapi.Port{Name: name, Port: n, Protocol: proto}, nil
}
