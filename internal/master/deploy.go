package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/spec"
)

// inProgress reports whether a revision is still rolling out.
func inProgress(status string) bool {
	return status == store.StatusProgressing || status == store.StatusCanary || status == statusPromoted
}

// Deploy makes a revision of the app from a spec and starts rolling it
// out. A bad spec, an image the master lacks, or a deploy of the same app
// already under way changes nothing.
func (m *Master) Deploy(ctx context.Context, yaml []byte, file, actor string) (masterapi.DeployResponse, error) {
	app, err := spec.Parse(yaml, file)
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	img, err := m.images.Resolve(app.Image)
	if errors.Is(err, errs.ErrNotFound) {
		return masterapi.DeployResponse{}, fmt.Errorf("image %q is not in the master's store: add it with moat image import or moat image build: %w", app.Image, errs.ErrNotFound)
	}
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	if err := m.checkAccepted(ctx, img); err != nil {
		return masterapi.DeployResponse{}, err
	}
	key := appKey(ctx, app.Name)
	m.deploys.Lock()
	defer m.deploys.Unlock()
	if cur, err := m.db.GetApp(ctx, key); err == nil {
		target, err := m.db.GetRevision(ctx, key, cur.Revision)
		if err != nil {
			return masterapi.DeployResponse{}, err
		}
		if inProgress(target.Status) {
			return masterapi.DeployResponse{}, fmt.Errorf("revision %d of %s is still rolling out: wait for it, or moat rollback %s: %w",
				target.Revision, app.Name, app.Name, errs.ErrConflict)
		}
	}
	if n, ok := m.autoscaledCount(ctx, key); ok && app.Autoscale != nil {
		app.Replicas = min(max(n, app.Autoscale.Min), app.Autoscale.Max) // the count reached, not the spec's start
	}
	if err := m.checkQuota(ctx, key, app, "this deploy"); err != nil {
		return masterapi.DeployResponse{}, err
	}
	if err := m.checkLinks(ctx, key, app); err != nil {
		return masterapi.DeployResponse{}, err
	}
	if err := m.checkIngress(ctx, key, app); err != nil {
		return masterapi.DeployResponse{}, err
	}
	rev, err := m.newRevision(ctx, key, app, string(img.Digest), "deploy", actor)
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	return masterapi.DeployResponse{App: app.Name, Revision: rev.Revision, Image: rev.Image}, nil
}

// newRevision records a revision of the app keyed key (store.AppKey).
func (m *Master) newRevision(ctx context.Context, key string, app spec.App, image, cause, actor string) (store.Revision, error) {
	if err := m.pinSecrets(ctx, key, &app, image); err != nil {
		return store.Revision{}, err
	}
	b, err := json.Marshal(app)
	if err != nil {
		return store.Revision{}, err
	}
	rev, err := m.db.NewRevision(ctx, store.Revision{App: key, Spec: b, Image: image, Template: template(app, image), Cause: cause})
	if err != nil {
		return store.Revision{}, err
	}
	m.log.Info("revision made", "app", app.Name, "revision", rev.Revision, "cause", cause, "image", image, "by", actor)
	m.revisionEvent(rev, actor)
	m.forgetKeep()
	m.kickReconcile()
	return rev, nil
}

// targetSpec is an app's current target revision and its spec.
func (m *Master) targetSpec(ctx context.Context, name string) (store.App, store.Revision, spec.App, error) {
	app, err := m.db.GetApp(ctx, name)
	if err != nil {
		return app, store.Revision{}, spec.App{}, err
	}
	rev, err := m.db.GetRevision(ctx, name, app.Revision)
	if err != nil {
		return app, rev, spec.App{}, err
	}
	var sp spec.App
	err = json.Unmarshal(rev.Spec, &sp)
	return app, rev, sp, err
}

// Scale sets an app's replica count: a new revision with the same
// template, so no replica restarts.
func (m *Master) Scale(ctx context.Context, name string, replicas int, actor string) (masterapi.DeployResponse, error) {
	key := appKey(ctx, name)
	m.deploys.Lock()
	defer m.deploys.Unlock()
	_, rev, sp, err := m.targetSpec(ctx, key)
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	if sp.Autoscale != nil {
		return masterapi.DeployResponse{}, refuseAutoscaled(name, sp.Autoscale)
	}
	sp.Replicas = replicas
	if err := sp.Validate(); err != nil {
		return masterapi.DeployResponse{}, err
	}
	if err := m.checkQuota(ctx, key, sp, "this scale"); err != nil {
		return masterapi.DeployResponse{}, err
	}
	r, err := m.newRevision(ctx, key, sp, rev.Image, fmt.Sprintf("scale to %d", replicas), actor)
	return masterapi.DeployResponse{App: name, Revision: r.Revision, Image: r.Image}, err
}

// Rollback makes a new revision from an earlier one (0: the last deployed
// revision before the target).
func (m *Master) Rollback(ctx context.Context, name string, to int, actor string) (masterapi.DeployResponse, error) {
	key := appKey(ctx, name)
	m.deploys.Lock()
	defer m.deploys.Unlock()
	app, err := m.db.GetApp(ctx, key)
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	if to == 0 {
		revs, err := m.db.Revisions(ctx, key)
		if err != nil {
			return masterapi.DeployResponse{}, err
		}
		if to = rollbackTarget(revs, app.Revision); to == 0 {
			return masterapi.DeployResponse{}, fmt.Errorf("%s has no deployed revision before %d to roll back to: %w", name, app.Revision, errs.ErrNotFound)
		}
	}
	old, err := m.db.GetRevision(ctx, key, to)
	if err != nil {
		return masterapi.DeployResponse{}, err
	}
	if _, err := m.images.Resolve(old.Image); err != nil {
		return masterapi.DeployResponse{}, fmt.Errorf("revision %d's image %s is no longer in the master's store (collected: it was outside %s's rollback window of %d images): import it again: %w",
			to, old.Image, name, m.cfg.KeepRevisions, err)
	}
	var sp spec.App
	if err := json.Unmarshal(old.Spec, &sp); err != nil {
		return masterapi.DeployResponse{}, err
	}
	// As a deploy: the count the autoscaler reached, not the old
	// revision's (a rollback is run under load, and the autoscaler
	// decides nothing while it rolls out).
	if n, ok := m.autoscaledCount(ctx, key); ok && sp.Autoscale != nil {
		sp.Replicas = min(max(n, sp.Autoscale.Min), sp.Autoscale.Max)
	}
	if err := m.checkQuota(ctx, key, sp, "this rollback"); err != nil {
		return masterapi.DeployResponse{}, err
	}
	r, err := m.newRevision(ctx, key, sp, old.Image, fmt.Sprintf("rollback to %d", to), actor)
	return masterapi.DeployResponse{App: name, Revision: r.Revision, Image: r.Image}, err
}

// Promote lets a canary revision go on past its canaries.
func (m *Master) Promote(ctx context.Context, name, actor string) error {
	key := appKey(ctx, name)
	app, rev, _, err := m.targetSpec(ctx, key)
	if err != nil {
		return err
	}
	if rev.Status != store.StatusCanary && rev.Status != store.StatusProgressing {
		return fmt.Errorf("revision %d of %s is %s, not waiting for promotion: %w", rev.Revision, name, rev.Status, errs.ErrConflict)
	}
	if err := m.db.SetStatus(ctx, key, app.Revision, statusPromoted, ""); err != nil {
		return err
	}
	m.kickReconcile()
	return nil
}

// RemoveApp deletes an app; its replicas are stopped.
func (m *Master) RemoveApp(ctx context.Context, name, actor string) error {
	m.deploys.Lock()
	defer m.deploys.Unlock()
	if err := m.db.DeleteApp(ctx, appKey(ctx, name)); err != nil {
		return err
	}
	m.removeMetrics("app", appKey(ctx, name))
	m.kickReconcile()
	return nil
}

// checkAccepted refuses at once an image no node would run for want of a
// signature it trusts (acceptProblem), rather than letting every replica
// fail. (Which of several nodes accept it, the scheduler weighs; the
// nodes themselves decide.)
func (m *Master) checkAccepted(ctx context.Context, img image.Image) error {
	nodes, err := m.db.Nodes(ctx)
	if err != nil {
		return err
	}
	return acceptProblem(nodes, img)
}
