package node

import (
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func (d *Daemon) handleImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := d.images.List()
	if err != nil {
		return err
	}
	out := make([]nodeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, image.Describe(img))
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleImport takes an OCI layout or docker save archive as the body.
func (d *Daemon) handleImport(w http.ResponseWriter, r *http.Request) error {
	imgs, err := d.images.Import(r.Context(), r.Body, r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	out := make([]nodeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		d.log.Info("image imported", "name", img.Name, "digest", img.Digest, "layers", len(img.Layers), "size", img.Size)
		out = append(out, image.Describe(img))
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (d *Daemon) handleImage(w http.ResponseWriter, r *http.Request) error {
	img, err := d.images.Resolve(r.PathValue("ref"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, image.Describe(img))
}

func (d *Daemon) handleRemoveImage(w http.ResponseWriter, r *http.Request) error {
	if err := d.images.Remove(r.PathValue("ref"), d.imageInUse); err != nil {
		return err
	}
	d.log.Info("image removed", "ref", r.PathValue("ref"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// imageInUse names a container, running or not, made from the image (its
// rootfs is stacked on the image's layers), if there is one.
func (d *Daemon) imageInUse(m digest.Digest) string {
	for _, c := range d.List() {
		if c.ImageDigest == string(m) {
			return "container " + c.ID + " (remove it first)"
		}
	}
	return ""
}

func (d *Daemon) handleMissingBlobs(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.BlobsRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	if len(req.Digests) > 10000 {
		return errs.Invalid("digests", "%d digests: at most 10000", len(req.Digests))
	}
	missing := []string{}
	for _, s := range req.Digests {
		if !d.images.HasBlob(digest.Digest(s)) {
			missing = append(missing, s)
		}
	}
	return writeJSON(w, http.StatusOK, nodeapi.BlobsRequest{Digests: missing})
}

// handlePull assembles an image from blobs the master uploaded to the
// inbox, verifying each one.
func (d *Daemon) handlePull(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.PullRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	m := digest.Digest(req.Digest)
	if err := m.Validate(); err != nil {
		return errs.Invalid("digest", "%q: %v", req.Digest, err)
	}
	if len(req.Signatures) > 32 {
		return errs.Invalid("signatures", "%d signatures: at most 32", len(req.Signatures))
	}
	var sigs [][]byte
	for _, s := range req.Signatures {
		sigs = append(sigs, []byte(s))
	}
	inbox := d.cfg.layout().InboxBlobs()
	// Refused before anything is stored: an image this node will not run
	// leaves nothing behind, uploads included.
	if err := d.checkSigned(m, sigs); err != nil {
		discardUploads(inbox, m)
		d.log.Warn("image refused", "digest", m, "err", err)
		return err
	}
	img, err := d.images.Pull(r.Context(), m, req.Name, inbox)
	if err != nil {
		return err
	}
	for i, s := range sigs {
		if _, err := d.images.AddSignature(m, s); err != nil {
			// Not fatal when another signature holds; say which one is bad.
			d.log.Warn("signature not kept", "digest", m, "signature", i+1, "err", err)
		}
	}
	img.Signers = d.images.Signers(m)
	d.log.Info("image pulled", "name", img.Name, "digest", img.Digest, "layers", len(img.Layers))
	return writeJSON(w, http.StatusOK, image.Describe(img))
}

// handleAddSignature keeps a signature with an image already here.
func (d *Daemon) handleAddSignature(w http.ResponseWriter, r *http.Request) error {
	var req nodeapi.SignRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	img, err := d.images.Resolve(r.PathValue("ref"))
	if err != nil {
		return err
	}
	if _, err := d.images.AddSignature(img.Digest, []byte(req.Signature)); err != nil {
		return err
	}
	img.Signers = d.images.Signers(img.Digest)
	return writeJSON(w, http.StatusOK, image.Describe(img))
}
