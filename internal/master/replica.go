package master

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

// newReplicaID names a replica and its container: the app and 6 random
// base-32 characters.
func newReplicaID(app string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return app + "-" + string(b)
}

// template hashes what a replica runs: the image and everything about the
// container. Revisions with the same template share replicas: scaling or
// changing the update strategy restarts nothing.
func template(a spec.App, image string) string {
	t := struct {
		Image     string
		Command   []string
		Args      []string
		Env       map[string]string
		Resources spec.Resources
		Ports     []spec.Port
		Health    *spec.Health
		Placement spec.Placement
		Restart   string
		Volumes   []spec.Volume
		Singleton bool
		// Only when given, so that templates made before it existed hash
		// the same and nothing restarts.
		Security *spec.Security `json:",omitempty"`
		Secrets  []spec.Secret  `json:",omitempty"`
	}{image, a.Command, a.Args, a.Env, a.Resources, a.Ports, a.Health, a.Placement, a.Restart, a.Volumes, a.Singleton, nil, nil}
	if len(a.Security.Drop) > 0 {
		t.Security = &a.Security
	}
	for _, s := range a.Secrets {
		if s.Reload == spec.ReloadSignal {
			s.Version = 0 // a new version is sent to the running replicas
		}
		t.Secrets = append(t.Secrets, s)
	}
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// containerSpec is what a node is asked to run for a replica.
func containerSpec(a spec.App, image string, r store.Replica) nodeapi.ContainerSpec {
	c := nodeapi.ContainerSpec{
		Name: r.ID, Image: image, Entrypoint: a.Command, Cmd: a.Args,
		Labels: map[string]string{
			"moat.app": r.App, "moat.tenant": keyTenant(r.App), "moat.replica": r.ID, "moat.revision": strconv.Itoa(r.Revision), "moat.template": r.Template,
		},
		Resources: nodeapi.Resources{MemoryBytes: a.Resources.MemoryBytes, MilliCPU: a.Resources.MilliCPU},
		Restart:   nodeapi.RestartPolicy{Policy: a.Restart},
		Security:  nodeapi.Security{Drop: a.Security.Drop},
		Fenced:    a.Singleton,
	}
	keys := make([]string, 0, len(a.Env))
	for k := range a.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Env = append(c.Env, k+"="+a.Env[k])
	}
	for _, p := range a.Ports {
		c.Ports = append(c.Ports, nodeapi.Port{Name: p.Name, Port: p.Port, Protocol: p.Protocol})
	}
	if h := a.Health; h != nil {
		c.Health = &nodeapi.HealthCheck{
			HTTPPath: h.HTTPPath, Port: h.Port, Interval: nodeapi.Duration(h.Interval),
			Timeout: nodeapi.Duration(h.Timeout), StartPeriod: nodeapi.Duration(h.StartPeriod), Retries: h.Retries,
		}
	}
	for _, v := range a.Volumes {
		c.Mounts = append(c.Mounts, nodeapi.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	return c
}

// create runs a replica on the node: its image first, then its container.
func (a *agent) create(ctx context.Context, rev store.Revision, r store.Replica) error {
	app, err := a.deps.specOf(rev)
	if err != nil {
		return err
	}
	if err := a.deps.deliver(ctx, a.name, rev.Image, app.Image); err != nil {
		return err
	}
	cs := containerSpec(app, rev.Image, r)
	if cs.Secrets, err = a.deps.secrets(ctx, rev.App, app); err != nil {
		return err
	}
	_, err = a.api.CreateContainer(ctx, cs, true)
	if errors.Is(err, errs.ErrConflict) {
		return nil // made by an earlier attempt whose answer was lost
	}
	return err
}

// stopAndRemove stops a container (SIGTERM, its grace period, SIGKILL)
// and removes it.
func (a *agent) stopAndRemove(ctx context.Context, id string) error {
	if _, err := a.api.StopContainer(ctx, id, nil); err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	if err := a.api.RemoveContainer(ctx, id, true); err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	return nil
}

// lastLines fetches the last n lines a replica wrote.
func (m *Master) lastLines(ctx context.Context, node, id string, n int) []string {
	a := m.agent(node)
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var lines []string
	a.api.Logs(ctx, id, nodeapi.LogOptions{Tail: n}, func(e nodeapi.LogEntry) error {
		lines = append(lines, e.Line)
		return nil
	})
	return lines
}
