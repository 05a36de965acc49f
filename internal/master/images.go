package master

import (
	"context"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

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
		out := []nodeapi.Image{}
		for _, img := range imgs {
			out = append(out, nodeapi.ImageOf(img))
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
			out = append(out, nodeapi.ImageOf(img))
		}
		return reply(w, out, nil)
	})
	handle("GET /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		img, err := m.images.Resolve(r.PathValue("ref"))
		if err != nil {
			return err
		}
		return reply(w, nodeapi.ImageOf(img), nil)
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
		return reply(w, nodeapi.ImageOf(img), nil)
	})
	handle("DELETE /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, m.images.Remove(r.PathValue("ref"), m.imageUsed(r.Context())))
	})
}

// imageUsed reports whether any revision of any app pins an image: those
// are rollback targets and stay.
func (m *Master) imageUsed(ctx context.Context) func(digest.Digest) bool {
	return func(d digest.Digest) bool {
		apps, err := m.db.Apps(ctx)
		if err != nil {
			return true
		}
		for _, a := range apps {
			revs, err := m.db.Revisions(ctx, a.Name)
			if err != nil {
				return true
			}
			for _, r := range revs {
				if r.Image == string(d) {
					return true
				}
			}
		}
		return false
	}
}
