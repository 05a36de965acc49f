package spec

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/privilege"
	"github.com/moatcloud/moat/internal/quantity"
)

// Compiled on first use: bounded repetitions make large programs, and
// every process of the one moat binary (a shim per container among them)
// would keep them.
var (
	nameRE       = lazyRE(`^[a-z][a-z0-9-]{0,29}$`)
	portNameRE   = lazyRE(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	nodeNameRE   = lazyRE(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRE   = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = lazyRE(`^[A-Za-z0-9._-]{0,63}$`)
)

// Validate re-checks an App built in code or loaded from storage: every
// default must be filled in and every value resolved, as Parse leaves them.
// It returns an *Error naming the first wrong field (in the order of the
// spec format), without file or line.
func (a App) Validate() error {
	if problems := a.check(); len(problems) > 0 {
		return problems[0]
	}
	return nil
}

// checker collects every problem, each naming its field by its path in the
// YAML format ("ports[1].name").
type checker []*Error

func (c *checker) add(field, format string, args ...any) {
	*c = append(*c, fieldErr(field, format, args...))
}

func (a App) check() []*Error {
	var c checker
	c.identity(a)
	c.process(a)
	c.resources(a.Resources)
	c.ports(a.Ports)
	c.health(a.Health, a.Ports)
	c.placement(a.Placement)
	c.update(a.Update, a.Replicas, a.Singleton)
	c.volumes(a.Volumes)
	c.secrets(a)
	c.links(a)
	c.ingress(a)
	c.alerts(a.Alerts)
	c.autoscale(a)
	for i, d := range a.Security.Drop {
		if _, err := privilege.ParseList([]string{d}); err != nil {
			c.add(fmt.Sprintf("security.drop[%d]", i), "%s", strings.TrimPrefix(err.Error(), ": "))
		}
	}
	if a.Singleton && a.Replicas > 1 {
		c.add("singleton", "a singleton runs at most one copy: want replicas 0 or 1, not %d", a.Replicas)
	}
	if a.Singleton && a.Update.Strategy != StrategyRolling {
		c.add("singleton", "a singleton is updated by stopping the old copy first: want the rolling strategy, not %s", a.Update.Strategy)
	}
	return c
}

func (c *checker) identity(a App) {
	switch {
	case a.Name == "":
		c.add("name", "required")
	case !nameRE().MatchString(a.Name):
		c.add("name", "%q: want 1 to 30 lowercase letters, digits and '-', starting with a letter", a.Name)
	}
	switch {
	case a.Image == "":
		c.add("image", "required: an image name or sha256 digest in the master's store")
	case len(a.Image) > 512 || strings.IndexFunc(a.Image, isSpaceOrControl) >= 0:
		c.add("image", "%q is not an image reference: want a name or digest without whitespace", a.Image)
	}
	if a.Replicas < 0 || a.Replicas > MaxReplicas {
		c.add("replicas", "%d: want 0 to %d", a.Replicas, MaxReplicas)
	}
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (c *checker) process(a App) {
	if len(a.Command) > 0 && a.Command[0] == "" {
		c.add("command[0]", "empty program")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"command", a.Command}, {"args", a.Args}} {
		for i, s := range l.list {
			if strings.ContainsRune(s, 0) {
				c.add(fmt.Sprintf("%s[%d]", l.field, i), "contains a NUL byte")
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.Env)) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			c.add("env."+k, "%q is not a variable name: want a name without '=' or NUL", k)
		case strings.ContainsRune(a.Env[k], 0):
			c.add("env."+k, "contains a NUL byte")
		}
	}
	switch a.Restart {
	case RestartNo, RestartOnFailure, RestartAlways:
	default:
		c.add("restart", "%q: want no, on-failure or always", a.Restart)
	}
}

func (c *checker) resources(r Resources) {
	switch {
	case r.MilliCPU < MinMilliCPU:
		c.add("resources.cpu", "%dm: want at least %dm", r.MilliCPU, MinMilliCPU)
	case r.MilliCPU > MaxMilliCPU:
		c.add("resources.cpu", "%dm: want at most %d cores", r.MilliCPU, MaxMilliCPU/1000)
	}
	if r.MemoryBytes < MinMemoryBytes {
		c.add("resources.memory", "%s: want at least %s", quantity.FormatBytes(max(r.MemoryBytes, 0)), quantity.FormatBytes(MinMemoryBytes))
	}
}

func (c *checker) ports(ports []Port) {
	names, numbers := map[string]int{}, map[string]int{}
	for i, p := range ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				c.add(field+".name", "%q is also the name of ports[%d]", p.Name, j)
			} else if !portNameRE().MatchString(p.Name) {
				c.add(field+".name", "%q: want 1 to 15 lowercase letters, digits and '-', not starting or ending with '-'", p.Name)
			}
			names[p.Name] = i
		}
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.Port < 1 || p.Port > 65535 {
			c.add(field+".port", "%d: want a port number from 1 to 65535", p.Port)
		} else if j, dup := numbers[key]; dup {
			c.add(field+".port", "%s is also ports[%d]", key, j)
		}
		numbers[key] = i
		if p.Protocol != ProtoTCP && p.Protocol != ProtoUDP {
			c.add(field+".protocol", "%q: want tcp or udp", p.Protocol)
		}
	}
}

func (c *checker) health(h *Health, ports []Port) {
	if h == nil {
		return
	}
	if h.HTTPPath != "" && (!strings.HasPrefix(h.HTTPPath, "/") || strings.IndexFunc(h.HTTPPath, isSpaceOrControl) >= 0) {
		c.add("health.http", "%q: want a path starting with /, without whitespace", h.HTTPPath)
	}
	if !slices.ContainsFunc(ports, func(p Port) bool { return p.Port == h.Port && p.Protocol == ProtoTCP }) {
		c.add("health.port", "%d is not a tcp port declared under ports", h.Port)
	}
	c.between("health.interval", h.Interval, MinInterval, MaxHealthDuration)
	switch {
	case h.Timeout <= 0:
		c.add("health.timeout", "%s: want more than 0", short(h.Timeout))
	case h.Timeout > h.Interval:
		c.add("health.timeout", "%s is longer than the interval (%s)", short(h.Timeout), short(h.Interval))
	}
	c.between("health.startPeriod", h.StartPeriod, 0, MaxHealthDuration)
	if h.Retries < 1 || h.Retries > MaxRetries {
		c.add("health.retries", "%d: want 1 to %d", h.Retries, MaxRetries)
	}
}

func (c *checker) between(field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		c.add(field, "%s: want %s to %s", short(d), short(lo), short(hi))
	}
}

// short prints a duration without zero minutes and seconds: 1h, not 1h0m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (c *checker) placement(pl Placement) {
	for _, k := range slices.Sorted(maps.Keys(pl.Labels)) {
		switch {
		case !labelKeyRE().MatchString(k):
			c.add("placement.labels."+k, "%q is not a label key: want 1 to 63 letters, digits, '.', '_', '/' or '-'", k)
		case !labelValueRE().MatchString(pl.Labels[k]):
			c.add("placement.labels."+k, "%q is not a label value: want up to 63 letters, digits, '.', '_' or '-'", pl.Labels[k])
		}
	}
}

func (c *checker) update(u Update, replicas int, singleton bool) {
	rolling := u.Strategy == StrategyRolling
	switch u.Strategy {
	case StrategyRolling, StrategyCanary, StrategyBlueGreen:
	default:
		c.add("update.strategy", "%q: want rolling, canary or blue-green", u.Strategy)
		return
	}
	switch {
	case rolling && (u.MaxSurge < 0 || u.MaxSurge > MaxReplicas):
		c.add("update.maxSurge", "%d: want 0 to %d", u.MaxSurge, MaxReplicas)
	case rolling && (u.MaxUnavailable < 0 || u.MaxUnavailable > MaxReplicas):
		c.add("update.maxUnavailable", "%d: want 0 to %d", u.MaxUnavailable, MaxReplicas)
	case rolling && singleton && u.MaxSurge != 0:
		c.add("update.maxSurge", "%d: a singleton never runs two copies: want 0", u.MaxSurge)
	case rolling && singleton && u.MaxUnavailable == 0:
		c.add("update.maxUnavailable", "a singleton cannot surge, so maxUnavailable must be at least 1")
	case rolling && u.MaxSurge == 0 && u.MaxUnavailable == 0:
		c.add("update.maxSurge", "maxSurge and maxUnavailable are both 0: a rolling update could never start")
	case !rolling && (u.MaxSurge != 0 || u.MaxUnavailable != 0):
		c.add("update.maxSurge", "only for the rolling strategy, not %s", u.Strategy)
	}
	if u.Strategy == StrategyCanary {
		switch {
		case u.Canary == 0:
			c.add("update.canary", "required for the canary strategy: how many replicas of the new revision run first")
		case u.Canary < 0 || u.Canary > max(replicas, 1):
			c.add("update.canary", "%d: want 1 to replicas (%d)", u.Canary, max(replicas, 1))
		}
		if u.Promote != PromoteManual && u.Promote != PromoteAuto {
			c.add("update.promote", "%q: want manual or auto", u.Promote)
		}
	} else {
		if u.Canary != 0 {
			c.add("update.canary", "only for the canary strategy, not %s", u.Strategy)
		}
		if u.Promote != "" {
			c.add("update.promote", "only for the canary strategy, not %s", u.Strategy)
		}
	}
	c.between("update.deadline", u.Deadline, MinDeadline, MaxDeadline)
	if u.Drain < 0 || u.Drain > MaxDrain {
		c.add("update.drain", "%s: want 0 to %s", u.Drain, MaxDrain)
	}
}

func (c *checker) volumes(vols []Volume) {
	targets := map[string]int{}
	for i, v := range vols {
		field := fmt.Sprintf("volumes[%d]", i)
		switch {
		case v.Node == "":
			c.add(field+".node", "required: the node that holds the data")
		case !nodeNameRE().MatchString(v.Node):
			c.add(field+".node", "%q is not a node name", v.Node)
		case v.Node != vols[0].Node:
			c.add(field+".node", "%q: all volumes must be on one node, and volumes[0] is on %q", v.Node, vols[0].Node)
		}
		switch {
		case !isCleanAbs(v.Source):
			c.add(field+".source", "%q: want a clean absolute host path such as /var/lib/moat/volumes/web", v.Source)
		case v.Source == "/":
			c.add(field+".source", "/ would give the app the whole host: want a directory")
		}
		switch j, dup := targets[v.Target]; {
		case !isCleanAbs(v.Target) || v.Target == "/":
			c.add(field+".target", "%q: want a clean absolute path other than /", v.Target)
		case dup:
			c.add(field+".target", "%q is also the target of volumes[%d]", v.Target, j)
		}
		targets[v.Target] = i
	}
}

func isCleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

func lazyRE(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
