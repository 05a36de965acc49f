package masterapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// BlobsRequest asks which of these blobs (sha256:HEX) the master lacks.
type BlobsRequest struct {
	Digests []string `json:"digests"`
}

// BlobState is a blob the master lacks, and how much of it has arrived
// (an upload goes on from Offset).
type BlobState struct {
	Digest string `json:"digest"`
	Offset int64  `json:"offset"`
}

// AssembleRequest names an image whose blobs have all been uploaded (or
// were stored already).
type AssembleRequest struct {
	Manifest string `json:"manifest"`
	Name     string `json:"name,omitempty"`
}

// MissingBlobs returns the blobs the master lacks, each with the offset
// its upload goes on from.
func (c *Client) MissingBlobs(ctx context.Context, digests []string) ([]BlobState, error) {
	var out []BlobState
	return out, c.Call(ctx, http.MethodPost, "/v1/blobs/missing", BlobsRequest{Digests: digests}, &out)
}

// PutBlob sends a blob's bytes from offset on (body holds them); size is
// the whole blob's. It returns how much of the blob the master then has.
func (c *Client) PutBlob(ctx context.Context, digest string, offset, size int64, body io.Reader) (BlobState, error) {
	var out BlobState
	path := fmt.Sprintf("/v1/blobs/%s?offset=%d&size=%s", esc(digest), offset, strconv.FormatInt(size, 10))
	return out, c.Upload(ctx, http.MethodPut, path, body, &out)
}

// AssembleImage makes an image in the master's store from its uploaded
// blobs.
func (c *Client) AssembleImage(ctx context.Context, req AssembleRequest) ([]nodeapi.Image, error) {
	var out []nodeapi.Image
	return out, c.Call(ctx, http.MethodPost, "/v1/images/assemble", req, &out)
}
