package spec

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Secret is one of the app's secrets its containers get: the file
// /run/secrets/NAME (read-only, mode 0400, the container's user's), and
// the variable Env when the spec names one. The value is not here: the
// master holds only its envelope, set with moat secret set.
type Secret struct {
	Name string `json:"name"`
	Env  string `json:"env,omitempty"` // also this environment variable
	// Reload says what a new version does: ReloadRestart (the default)
	// rolls the app's replicas; ReloadSignal replaces the file in place
	// and sends Signal to the container's process.
	Reload string `json:"reload,omitempty"`
	Signal string `json:"signal,omitempty"` // with ReloadSignal; default SIGHUP
	// Version is the version the revision runs: set by the master when it
	// makes the revision, never written in a spec.
	Version int `json:"version,omitempty"`
}

// Reload modes.
const (
	ReloadRestart = "restart"
	ReloadSignal  = "signal"
)

// Signals a reload may send: those a program can catch and that mean
// "look again" by convention.
var reloadSignals = []string{"SIGHUP", "SIGUSR1", "SIGUSR2"}

var secretNameRE = lazyRE(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (p *parser) secrets(v *yaml.Node, path string) error {
	return p.items(v, path, func(_ int, item *yaml.Node, path string) error {
		var s Secret
		err := p.fields(item, path, []field{
			{"name", p.toStr(&s.Name)},
			{"env", p.toStr(&s.Env)},
			{"reload", p.toStr(&s.Reload)},
			{"signal", p.toStr(&s.Signal)},
		})
		if s.Reload == ReloadSignal && s.Signal == "" {
			s.Signal = "SIGHUP"
		}
		p.app.Secrets = append(p.app.Secrets, s)
		return err
	})
}

func (c *checker) secrets(a App) {
	seen := map[string]int{}
	envs := map[string]string{}
	for i, s := range a.Secrets {
		field := fmt.Sprintf("secrets[%d]", i)
		switch j, dup := seen[s.Name]; {
		case !secretNameRE().MatchString(s.Name):
			c.add(field+".name", "%q: want letters, digits, '_', '.', '-' (max 63), starting with a letter or digit", s.Name)
		case dup:
			c.add(field+".name", "%q is also secrets[%d]", s.Name, j)
		}
		seen[s.Name] = i
		if s.Env != "" {
			_, inEnv := a.Env[s.Env]
			switch other, dup := envs[s.Env]; {
			case !envNameRE().MatchString(s.Env):
				c.add(field+".env", "%q: want a variable name: letters, digits and '_', not starting with a digit", s.Env)
			case inEnv:
				c.add(field+".env", "%q is also set in env", s.Env)
			case dup:
				c.add(field+".env", "%q is also the variable of secret %s", s.Env, other)
			}
			envs[s.Env] = s.Name
		}
		switch s.Reload {
		case "", ReloadRestart:
			if s.Signal != "" {
				c.add(field+".signal", "only with reload: signal")
			}
		case ReloadSignal:
			if s.Env != "" {
				c.add(field+".reload", "a variable cannot change in a running process: reload: signal needs a secret without env")
			}
			if !slices.Contains(reloadSignals, s.Signal) {
				c.add(field+".signal", "%q: want one of %v", s.Signal, reloadSignals)
			}
		default:
			c.add(field+".reload", "%q: want restart or signal", s.Reload)
		}
		if s.Version < 0 {
			c.add(field+".version", "%d: want 0 or more", s.Version)
		}
	}
}

var envNameRE = lazyRE(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
