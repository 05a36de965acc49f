package master

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
)

// Images lists the master's images, each with what keeps it (imageRefs).
func (m *Master) Images(ctx context.Context) ([]masterapi.Image, error) {
	imgs, err := m.images.List()
	if err != nil {
		return nil, err
	}
	refs, err := m.imageRefs(ctx)
	if err != nil {
		return nil, err
	}
	out := []masterapi.Image{}
	for _, img := range imgs {
		out = append(out, masterapi.Image{Image: image.Describe(img), UsedBy: refs[img.Digest]})
	}
	return out, nil
}

// ImportImage imports the images of an OCI layout or docker save archive
// into the master's store, all or nothing; name names an image the
// archive leaves unnamed.
func (m *Master) ImportImage(ctx context.Context, archive io.Reader, name, actor string) ([]nodeapi.Image, error) {
	imgs, err := m.images.Import(ctx, archive, name)
	if err != nil {
		return nil, err
	}
	out := []nodeapi.Image{}
	for _, img := range imgs {
		m.log.Info("image imported", "image", img.Name, "digest", img.Digest, "by", actor)
		out = append(out, image.Describe(img))
	}
	return out, nil
}

// Image describes an image in the master's store.
func (m *Master) Image(ref string) (nodeapi.Image, error) {
	img, err := m.images.Resolve(ref)
	if err != nil {
		return nodeapi.Image{}, err
	}
	return image.Describe(img), nil
}

// SignImage adds an sshsig signature to an image, which nodes that trust
// its key will then run.
func (m *Master) SignImage(ctx context.Context, ref string, signature []byte, actor string) (nodeapi.Image, error) {
	img, err := m.images.Resolve(ref)
	if err != nil {
		return nodeapi.Image{}, err
	}
	added, err := m.images.AddSignature(img.Digest, signature)
	if err != nil {
		return nodeapi.Image{}, err
	}
	if added {
		key, _ := sign.Check(signature, img.Digest)
		m.log.Info("image signed", "image", img.Name, "digest", img.Digest, "key", sign.Fingerprint(key))
	}
	img.Signers = m.images.Signers(img.Digest)
	return image.Describe(img), nil
}

// RemoveImage removes an image from the master's store, unless something
// keeps it (imageUsed).
func (m *Master) RemoveImage(ctx context.Context, ref string) error {
	return m.images.Remove(ref, m.imageUsed(ctx))
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
