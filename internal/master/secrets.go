package master

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/spec"
)

// Secrets are envelopes sealed on the operator's machine (package
// secret): the master stores them, puts the current one of each secret an
// app's spec names into its containers' create requests, and cannot open
// any. A new version of a secret the app's target spec uses makes a new
// revision, which pins it: a secret with reload: restart is part of the
// replicas' template, so they roll; one with reload: signal is not, and
// the master sends the new envelope to the running containers instead.

// Secrets lists an app's secrets: names, versions and dates.
func (m *Master) Secrets(ctx context.Context, app string) ([]masterapi.Secret, error) {
	rows, err := m.db.Secrets(ctx, callerTenant(ctx), app)
	if err != nil {
		return nil, err
	}
	out := make([]masterapi.Secret, 0, len(rows))
	for _, s := range rows {
		out = append(out, masterapi.Secret{Tenant: s.Tenant, App: s.App, Name: s.Name, Version: s.Version, Created: s.Created, Updated: s.Updated})
	}
	return out, nil
}

// PutSecret stores a secret's next version and, when the app's target
// spec uses it, makes a revision that runs it.
func (m *Master) PutSecret(ctx context.Context, app, name string, req masterapi.PutSecretRequest, actor string) (masterapi.Secret, error) {
	tenant := callerTenant(ctx)
	if req.Tenant != tenant {
		return masterapi.Secret{}, errs.Invalid("tenant", "the secret is sealed for tenant %q and this request acts in %q: set it again with --tenant %s", req.Tenant, tenant, tenant)
	}
	b := secret.Binding{Tenant: tenant, App: app, Name: name, Version: req.Version}
	if err := b.Validate(); err != nil {
		return masterapi.Secret{}, errs.Invalid("secret", "%v", err)
	}
	if len(req.Envelope) == 0 || len(req.Envelope) > secret.MaxEnvelope {
		return masterapi.Secret{}, errs.Invalid("envelope", "%d bytes: want 1 to %d", len(req.Envelope), secret.MaxEnvelope)
	}
	key := store.AppKey(tenant, app)
	m.deploys.Lock()
	defer m.deploys.Unlock()
	_, rev, sp, err := m.targetSpec(ctx, key)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return masterapi.Secret{}, err
	}
	i := slices.IndexFunc(sp.Secrets, func(s spec.Secret) bool { return s.Name == name })
	if i >= 0 && inProgress(rev.Status) {
		return masterapi.Secret{}, fmt.Errorf("revision %d of %s is still rolling out: set the secret once it is over: %w", rev.Revision, app, errs.ErrConflict)
	}
	s, err := m.db.PutSecret(ctx, store.Secret{Tenant: tenant, App: app, Name: name, Version: req.Version, Envelope: req.Envelope})
	if err != nil {
		return masterapi.Secret{}, err
	}
	m.secretsChanged.Add(1)
	m.log.Info("secret set", "tenant", tenant, "app", app, "secret", name, "version", s.Version, "actor", actor)
	out := masterapi.Secret{Tenant: tenant, App: app, Name: name, Version: s.Version, Created: s.Created, Updated: s.Updated}
	if i < 0 {
		return out, nil
	}
	if _, err := m.newRevision(ctx, key, sp, rev.Image, fmt.Sprintf("secret %s version %d", name, s.Version), actor); err != nil {
		return out, fmt.Errorf("secret %s stored, but no revision runs it: %w", name, err)
	}
	if sp.Secrets[i].Reload == spec.ReloadSignal {
		go m.reloadSecret(key, sp.Secrets[i], s)
	}
	return out, nil
}

// RemoveSecret deletes a secret the app's target revision does not use.
func (m *Master) RemoveSecret(ctx context.Context, app, name, actor string) error {
	tenant := callerTenant(ctx)
	key := store.AppKey(tenant, app)
	m.deploys.Lock()
	defer m.deploys.Unlock()
	_, rev, sp, err := m.targetSpec(ctx, key)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	if slices.ContainsFunc(sp.Secrets, func(s spec.Secret) bool { return s.Name == name }) {
		return fmt.Errorf("revision %d of %s uses secret %s: deploy a spec without it first: %w", rev.Revision, app, name, errs.ErrConflict)
	}
	if err := m.db.RemoveSecret(ctx, tenant, app, name); err != nil {
		return err
	}
	m.secretsChanged.Add(1)
	m.log.Info("secret removed", "tenant", tenant, "app", app, "secret", name, "actor", actor)
	return nil
}

// everyTenant says whether the caller acts for the whole cluster: root on
// the master's socket, or a cluster admin.
func everyTenant(ctx context.Context) bool {
	c, ok := access.CallerFrom(ctx)
	return !ok || c.Local || c.Tenant == AllTenants
}

// SecretEnvelopes returns the envelopes a rotation re-encrypts, every
// version kept: every tenant's for the whole cluster, else the caller's
// tenant's.
func (m *Master) SecretEnvelopes(ctx context.Context) ([]masterapi.SecretEnvelope, error) {
	tenant := ""
	if !everyTenant(ctx) {
		tenant = callerTenant(ctx)
	}
	rows, err := m.db.SecretVersions(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]masterapi.SecretEnvelope, 0, len(rows))
	for _, s := range rows {
		out = append(out, masterapi.SecretEnvelope{Tenant: s.Tenant, App: s.App, Name: s.Name, Version: s.Version, Envelope: s.Envelope})
	}
	return out, nil
}

// ReplaceSecretEnvelopes swaps envelopes re-encrypted by a rotation, all
// or none, versions unchanged: nothing restarts.
func (m *Master) ReplaceSecretEnvelopes(ctx context.Context, envs []masterapi.SecretEnvelope, actor string) error {
	rows := make([]store.Secret, 0, len(envs))
	for i, e := range envs {
		b := secret.Binding{Tenant: e.Tenant, App: e.App, Name: e.Name, Version: e.Version}
		if err := b.Validate(); err != nil {
			return errs.Invalid(fmt.Sprintf("[%d]", i), "%v", err)
		}
		if len(e.Envelope) == 0 || len(e.Envelope) > secret.MaxEnvelope {
			return errs.Invalid(fmt.Sprintf("[%d].envelope", i), "%d bytes: want 1 to %d", len(e.Envelope), secret.MaxEnvelope)
		}
		if !everyTenant(ctx) && e.Tenant != callerTenant(ctx) {
			return fmt.Errorf("secret %s is tenant %s's: %w", e.Name, e.Tenant, errs.ErrForbidden)
		}
		rows = append(rows, store.Secret{Tenant: e.Tenant, App: e.App, Name: e.Name, Version: e.Version, Envelope: e.Envelope})
	}
	if err := m.db.ReplaceEnvelopes(ctx, rows); err != nil {
		return err
	}
	m.secretsChanged.Add(1) // same versions, new envelopes
	m.log.Info("secret envelopes replaced", "count", len(rows), "actor", actor)
	return nil
}

// pinSecrets records in app the version of each secret it uses, refusing
// a secret that is not set, and an image that does not declare the app
// (nodes would refuse its containers the secrets).
func (m *Master) pinSecrets(ctx context.Context, key string, app *spec.App, image string) error {
	if len(app.Secrets) == 0 {
		return nil
	}
	tenant, name := store.SplitAppKey(key)
	if img, err := m.images.Resolve(image); err == nil {
		want := tenant + "/" + name
		if got := img.Config.Config.Labels[secret.AppLabel]; got != want {
			return errs.Invalid("image", "the image declares app %q (its %s label), and nodes give app %s's secrets only to images declaring it: build it with moat image build --app %s", got, secret.AppLabel, want, want)
		}
	}
	for i := range app.Secrets {
		s, err := m.db.GetSecret(ctx, tenant, name, app.Secrets[i].Name, 0)
		if err != nil {
			return err
		}
		app.Secrets[i].Version = s.Version
	}
	return nil
}

// secretMounts are the envelopes a replica of the app keyed key gets: the
// versions its revision pinned, so a revision restored after a failed
// rollout of a new version runs the version before.
func (m *Master) secretMounts(ctx context.Context, key string, sp spec.App) ([]nodeapi.SecretMount, error) {
	tenant, name := store.SplitAppKey(key)
	var out []nodeapi.SecretMount
	for _, s := range sp.Secrets {
		row, err := m.db.GetSecret(ctx, tenant, name, s.Name, s.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, mountOf(s, row))
	}
	return out, nil
}

func mountOf(s spec.Secret, row store.Secret) nodeapi.SecretMount {
	sm := nodeapi.SecretMount{Name: s.Name, Version: row.Version, Envelope: row.Envelope, Env: s.Env}
	if s.Reload == spec.ReloadSignal {
		sm.Signal = s.Signal
	}
	return sm
}

// reloadSecret sends a new version of a reload: signal secret to every
// container of the app that runs: the node replaces the file in place and
// signals the process. A replica it cannot reach is tried again, backing
// off, for ten minutes or until a newer version is set.
func (m *Master) reloadSecret(key string, s spec.Secret, row store.Secret) {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Minute)
	defer cancel()
	update := nodeapi.SecretsUpdate{Secrets: []nodeapi.SecretMount{mountOf(s, row)}}
	done := map[string]bool{}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if !m.reloadOnce(ctx, key, update, done) {
			return
		}
		select {
		case <-ctx.Done():
			m.log.Warn("secret not reloaded everywhere", "app", key, "secret", s.Name, "version", row.Version)
			return
		case <-time.After(wait):
		}
		latest, err := m.db.GetSecret(ctx, row.Tenant, row.App, row.Name, 0)
		if err != nil || latest.Version != row.Version {
			return // removed, or a newer version has its own reload
		}
	}
}

// reloadOnce sends the update to each running replica of the app not yet
// done, and says whether one is left to try again.
func (m *Master) reloadOnce(ctx context.Context, key string, update nodeapi.SecretsUpdate, done map[string]bool) bool {
	reps, err := m.db.Replicas(ctx)
	if err != nil {
		return true
	}
	again := false
	for _, r := range reps {
		if r.App != key || r.Desired != store.Run || done[r.ID] {
			continue
		}
		a := m.agent(r.Node)
		if a == nil {
			continue
		}
		_, err := a.api.UpdateSecrets(ctx, r.ID, update)
		switch {
		case err == nil, errors.Is(err, errs.ErrNotFound), errors.Is(err, errs.ErrConflict), errors.Is(err, errs.ErrForbidden), errors.Is(err, errs.ErrInvalid):
			// Done, gone (its replacement is made with the version), or
			// refused for good (the node's log says why).
			done[r.ID] = true
			if err != nil && !errors.Is(err, errs.ErrNotFound) {
				m.log.Warn("secret not reloaded", "replica", r.ID, "node", r.Node, "err", err)
			}
		default:
			again = true
		}
	}
	return again
}
