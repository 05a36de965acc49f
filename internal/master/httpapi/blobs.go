package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// BlobControl is image upload blob by blob, for a CLI on another machine:
// only what the master lacks travels, and an interrupted upload goes on
// from where it stopped.
type BlobControl interface {
	MissingBlobs(ctx context.Context, digests []string) ([]masterapi.BlobState, error)
	// WriteBlob appends body to the blob's upload at offset (which must
	// be what has arrived); size is the whole blob's.
	WriteBlob(ctx context.Context, digest string, offset, size int64, body io.Reader) (masterapi.BlobState, error)
	AssembleImage(ctx context.Context, req masterapi.AssembleRequest, actor string) ([]nodeapi.Image, error)
}

func init() {
	// Uploading blobs is importing an image, in steps.
	routeActions["POST /v1/blobs/missing"] = access.ImageImport
	routeActions["PUT /v1/blobs/{digest}"] = access.ImageImport
	routeActions["POST /v1/images/assemble"] = access.ImageImport
}

func (s *server) blobRoutes(handle handleFunc) {
	handle("POST /v1/blobs/missing", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.BlobsRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		missing, err := s.cp.MissingBlobs(r.Context(), req.Digests)
		return reply(w, missing, err)
	})
	handle("PUT /v1/blobs/{digest}", func(w http.ResponseWriter, r *http.Request) error {
		offset, err := queryInt(r, "offset")
		if err != nil {
			return err
		}
		size, err := queryInt(r, "size")
		if err != nil {
			return err
		}
		st, err := s.cp.WriteBlob(r.Context(), r.PathValue("digest"), offset, size, r.Body)
		return reply(w, st, err)
	})
	handle("POST /v1/images/assemble", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.AssembleRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		imgs, err := s.cp.AssembleImage(r.Context(), req, actor(r))
		return reply(w, imgs, err)
	})
}

func queryInt(r *http.Request, name string) (int64, error) {
	n, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
	if err != nil || n < 0 {
		return 0, errs.Invalid(name, "%q: want a number of bytes", r.URL.Query().Get(name))
	}
	return n, nil
}
