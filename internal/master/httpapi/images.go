package httpapi

import (
	"net/http"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

func (s *server) imageRoutes(handle handleFunc) {
	handle("GET /v1/images", func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := s.cp.Images(r.Context())
		return reply(w, imgs, err)
	})
	handle("POST /v1/images/import", func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := s.cp.ImportImage(r.Context(), r.Body, r.URL.Query().Get("name"), actor(r))
		return reply(w, imgs, err)
	})
	handle("GET /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		img, err := s.cp.Image(r.PathValue("ref"))
		return reply(w, img, err)
	})
	handle("POST /v1/signatures/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.SignRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		img, err := s.cp.SignImage(r.Context(), r.PathValue("ref"), []byte(req.Signature), actor(r))
		return reply(w, img, err)
	})
	handle("DELETE /v1/images/{ref...}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveImage(r.Context(), r.PathValue("ref")))
	})
	handle("POST /v1/images/gc", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.GCRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		reports, err := s.cp.GC(r.Context(), req, actor(r))
		return reply(w, reports, err)
	})
	handle("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, s.cp.Stats(), nil)
	})
}
