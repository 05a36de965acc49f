package master

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
	"github.com/moatcloud/moat/internal/wire"
)

func (m *Master) imageRoutes(handle handleFunc) {
	handle("GET /v1/images", func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := m.images.List()
		if err != nil {
			return err
		}
		refs, err := m.imageRefs(r.Context())
		if err != nil {
			return err
		}
		out := []masterapi.Image{}
		for _, img := range imgs {
			out = append(out, masterapi.Image{Image: image.Describe(img), UsedBy: refs[img.Digest]})
		}
		return reply(w, out, nil)
	})
	handle("POST /v1/images/import", func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := m.images.Import(r.Context(), r.Body, r.URL.Query().Get("name"))
		if err != nil {
			return err
		}
		out := []nodeapi.Image{}
		for _, img := range imgs {
			m.db.Audit(r.Context(), actor(r), "image import", img.Name+" "+string(img.Digest))
			out = append(out, image.Describe(img))
		}
		return reply(w, out, nil)
	})
	handle("GET /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		img, err := m.images.Resolve(r.PathValue("ref"))
		if err != nil {
			return err
		}
		return reply(w, image.Describe(img), nil)
	})
	handle("POST /v1/signatures/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.SignRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		img, err := m.images.Resolve(r.PathValue("ref"))
		if err != nil {
			return err
		}
		added, err := m.images.AddSignature(img.Digest, []byte(req.Signature))
		if err != nil {
			return err
		}
		if added {
			key, _ := sign.Check([]byte(req.Signature), img.Digest)
			m.db.Audit(r.Context(), actor(r), "image sign", fmt.Sprintf("%s %s by %s", img.Name, img.Digest, sign.Fingerprint(key)))
			m.log.Info("image signed", "image", img.Name, "digest", img.Digest, "key", sign.Fingerprint(key))
		}
		img.Signers = m.images.Signers(img.Digest)
		return reply(w, image.Describe(img), nil)
	})
	handle("DELETE /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, m.images.Remove(r.PathValue("ref"), m.imageUsed(r.Context())))
	})
}

// imageRefs says, for every image the master keeps, what keeps it: the
// revisions in each app's rollback window (its last KeepRevisions
// distinct images, newest first), its stable revision, and the revisions
// replicas run. Everything else is garbage.
func (m *Master) imageRefs(ctx context.Context) (map[digest.Digest][]string, error) {
	refs := map[digest.Digest][]string{}
	add := func(d, why string) {
		if !slices.Contains(refs[digest.Digest(d)], why) {
			refs[digest.Digest(d)] = append(refs[digest.Digest(d)], why)
		}
	}
	apps, err := m.db.Apps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		revs, err := m.db.Revisions(ctx, a.Name)
		if err != nil {
			return nil, err
		}
		for _, ref := range rollbackWindow(a, revs, m.cfg.KeepRevisions) {
			add(ref.Image, ref.Why)
		}
	}
	reps, err := m.db.Replicas(ctx)
	if err != nil {
		return nil, err
	}
	// Each revision once, however many replicas run it.
	seen := map[string]bool{}
	for _, r := range reps {
		name := fmt.Sprintf("%s@%d", r.App, r.Revision)
		if seen[name] {
			continue
		}
		seen[name] = true
		rev, err := m.db.GetRevision(ctx, r.App, r.Revision)
		if err != nil {
			continue
		}
		d := digest.Digest(rev.Image)
		// The current revision's replicas say nothing more than "current".
		if !slices.ContainsFunc(refs[d], func(s string) bool { return strings.HasPrefix(s, name+" (") }) {
			add(rev.Image, name+" (running)")
		}
	}
	return refs, nil
}

// imageUsed names what keeps an image, for refusing its removal.
func (m *Master) imageUsed(ctx context.Context) func(digest.Digest) string {
	return func(d digest.Digest) string {
		refs, err := m.imageRefs(ctx)
		if err != nil {
			return "the master (its database cannot be read: " + err.Error() + ")"
		}
		if len(refs[d]) == 0 {
			return ""
		}
		return "revisions " + strings.Join(refs[d], ", ") + " (the rollback window)"
	}
}
