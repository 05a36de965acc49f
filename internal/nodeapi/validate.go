package nodeapi

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// Patterns compile on first use: the binary also runs as the shim, which
// should not carry them.
var (
	nameRE     = lazyRE(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	portNameRE = lazyRE(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	hostnameRE = lazyRE(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	userRE     = lazyRE(`^([0-9]{1,10}|[a-z_][a-z0-9_-]{0,31})(:([0-9]{1,10}|[a-z_][a-z0-9_-]{0,31}))?$`)
	envKeyRE   = lazyRE(`^[^=\x00]+$`)
	capRE      = lazyRE(`^[A-Za-z_]{1,40}$`)
)

func lazyRE(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// Limits on what a request may ask for.
const (
	MinMemoryBytes = 6 << 20
	MaxStopTimeout = time.Hour
)

// ValidName reports whether s can name a container: lowercase letters,
// digits, '_', '.', '-', at most 63 characters, starting alphanumeric.
func ValidName(s string) bool { return nameRE().MatchString(s) }

// Validate checks every field and returns an errs.FieldError for the first
// one that is wrong.
func (s *ContainerSpec) Validate() error {
	if s.Name != "" && !ValidName(s.Name) {
		return errs.Invalid("name", "%q: use lowercase letters, digits, '_', '.', '-' (max 63), starting with a letter or digit", s.Name)
	}
	if strings.TrimSpace(s.Image) == "" {
		return errs.Invalid("image", "required")
	}
	if len(s.Image) > 512 || strings.ContainsAny(s.Image, " \t\r\n\x00") {
		return errs.Invalid("image", "%q is not an image reference", s.Image)
	}
	if len(s.Entrypoint) > 0 && s.Entrypoint[0] == "" {
		return errs.Invalid("entrypoint[0]", "empty program")
	}
	for _, check := range []func() error{
		func() error { return checkArgs("entrypoint", s.Entrypoint) },
		func() error { return checkArgs("cmd", s.Cmd) },
		s.validateEnv, s.validateProcess, s.validatePorts, s.validateMounts,
		s.Resources.validate, s.Restart.validate, s.Security.validate, s.validateSecrets,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	if d := time.Duration(s.StopTimeout); d < 0 || d > MaxStopTimeout {
		return errs.Invalid("stopTimeout", "%s: want 0 to %s", d, MaxStopTimeout)
	}
	return s.validateHealth()
}

func (s *ContainerSpec) validateHealth() error {
	h := s.Health
	if h == nil {
		return nil
	}
	if h.Port < 1 || h.Port > 65535 {
		return errs.Invalid("health.port", "%d: want 1 to 65535", h.Port)
	}
	if h.HTTPPath != "" && !strings.HasPrefix(h.HTTPPath, "/") || strings.ContainsAny(h.HTTPPath, " \r\n") {
		return errs.Invalid("health.httpPath", "%q: want a path starting with /", h.HTTPPath)
	}
	for field, d := range map[string]Duration{"interval": h.Interval, "timeout": h.Timeout, "startPeriod": h.StartPeriod} {
		if d < 0 || time.Duration(d) > time.Hour {
			return errs.Invalid("health."+field, "%s: want 0 to 1h", time.Duration(d))
		}
	}
	if h.Interval != 0 && time.Duration(h.Interval) < 10*time.Millisecond {
		return errs.Invalid("health.interval", "%s: the minimum is 10ms", time.Duration(h.Interval))
	}
	if h.Retries < 0 || h.Retries > 100 {
		return errs.Invalid("health.retries", "%d: want 0 to 100", h.Retries)
	}
	return nil
}

func checkArgs(field string, args []string) error {
	for i, a := range args {
		if strings.ContainsRune(a, 0) {
			return errs.Invalid(fmt.Sprintf("%s[%d]", field, i), "contains a NUL byte")
		}
	}
	return nil
}

func (s *ContainerSpec) validateEnv() error {
	for i, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRE().MatchString(k) || strings.ContainsRune(e, 0) {
			return errs.Invalid(fmt.Sprintf("env[%d]", i), "%q: want KEY=VALUE", e)
		}
	}
	return nil
}

func (s *ContainerSpec) validateProcess() error {
	if s.WorkDir != "" && !isCleanAbs(s.WorkDir) {
		return errs.Invalid("workdir", "%q: want a clean absolute path", s.WorkDir)
	}
	if s.User != "" && !userRE().MatchString(s.User) {
		return errs.Invalid("user", "%q: want uid[:gid] or a user name", s.User)
	}
	if s.Hostname != "" && !hostnameRE().MatchString(s.Hostname) {
		return errs.Invalid("hostname", "%q: want a DNS label (letters, digits, '-', max 63)", s.Hostname)
	}
	for k := range s.Labels {
		if k == "" || len(k) > 128 {
			return errs.Invalid("labels", "label key %q: want 1 to 128 characters", k)
		}
	}
	return nil
}

func (s *ContainerSpec) validatePorts() error {
	names := map[string]bool{}
	seen := map[string]bool{}
	for i, p := range s.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p.Port < 1 || p.Port > 65535 {
			return errs.Invalid(field+".port", "%d: want 1 to 65535", p.Port)
		}
		switch p.Protocol {
		case "", "tcp", "udp":
		default:
			return errs.Invalid(field+".protocol", "%q: want tcp or udp", p.Protocol)
		}
		if p.Name != "" {
			if !portNameRE().MatchString(p.Name) {
				return errs.Invalid(field+".name", "%q: want lowercase letters, digits and '-', max 15", p.Name)
			}
			if names[p.Name] {
				return errs.Invalid(field+".name", "duplicate port name %q", p.Name)
			}
			names[p.Name] = true
		}
		key := fmt.Sprintf("%d/%s", p.Port, p.ProtocolOrTCP())
		if seen[key] {
			return errs.Invalid(field+".port", "duplicate port %s", key)
		}
		seen[key] = true
	}
	return nil
}

// ProtocolOrTCP returns the port's protocol, tcp when unset.
func (p Port) ProtocolOrTCP() string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

func (s *ContainerSpec) validateMounts() error {
	targets := map[string]bool{}
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if !isCleanAbs(m.Target) || m.Target == "/" {
			return errs.Invalid(field+".target", "%q: want a clean absolute path other than /", m.Target)
		}
		if targets[m.Target] {
			return errs.Invalid(field+".target", "duplicate target %q", m.Target)
		}
		targets[m.Target] = true
		switch m.Type {
		case "", "bind":
			if !isCleanAbs(m.Source) {
				return errs.Invalid(field+".source", "%q: want a clean absolute host path", m.Source)
			}
			if m.Size != 0 {
				return errs.Invalid(field+".size", "only tmpfs mounts have a size")
			}
		case "tmpfs":
			if m.Source != "" {
				return errs.Invalid(field+".source", "a tmpfs has no source")
			}
			if m.Size < 0 {
				return errs.Invalid(field+".size", "%d: must not be negative", m.Size)
			}
		default:
			return errs.Invalid(field+".type", "%q: want bind or tmpfs", m.Type)
		}
	}
	return nil
}

func (r Resources) validate() error {
	if r.MemoryBytes != 0 && r.MemoryBytes < MinMemoryBytes {
		return errs.Invalid("resources.memory", "%d bytes: the minimum is %d (6 MiB)", r.MemoryBytes, MinMemoryBytes)
	}
	if r.MemoryBytes < 0 {
		return errs.Invalid("resources.memory", "must not be negative")
	}
	if r.MilliCPU != 0 && (r.MilliCPU < 10 || r.MilliCPU > 1024*1000) {
		return errs.Invalid("resources.milliCPU", "%d: want 10 (1%% of a core) to 1024000", r.MilliCPU)
	}
	if r.Pids != 0 && (r.Pids < 8 || r.Pids > 1<<22) {
		return errs.Invalid("resources.pids", "%d: want 8 to %d", r.Pids, 1<<22)
	}
	return nil
}

func (r RestartPolicy) validate() error {
	switch r.Policy {
	case "", RestartNo, RestartOnFailure, RestartAlways:
	default:
		return errs.Invalid("restart.policy", "%q: want no, on-failure or always", r.Policy)
	}
	if r.MaxRetries < 0 {
		return errs.Invalid("restart.maxRetries", "must not be negative")
	}
	if r.MaxRetries > 0 && r.Policy != RestartOnFailure {
		return errs.Invalid("restart.maxRetries", "only applies to the on-failure policy")
	}
	return nil
}

func (s Security) validate() error {
	switch s.Seccomp {
	case "", "default", "unconfined":
	default:
		return errs.Invalid("security.seccomp", "%q: want default or unconfined", s.Seccomp)
	}
	switch s.Network {
	case "", "none", "host":
	default:
		return errs.Invalid("security.network", "%q: want none (loopback only) or host", s.Network)
	}
	for i, p := range s.Drop {
		if p == "" || len(p) > 64 || strings.ContainsAny(p, " ,\x00") {
			return errs.Invalid(fmt.Sprintf("security.drop[%d]", i), "%q: want one privilege name", p)
		}
	}
	// Which names are capabilities is the node's to check (package
	// privilege); here only their shape.
	for i, c := range s.CapAdd {
		if !capRE().MatchString(c) {
			return errs.Invalid(fmt.Sprintf("security.capAdd[%d]", i), "%q is not a capability name such as NET_BIND_SERVICE", c)
		}
	}
	return nil
}

func isCleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}
