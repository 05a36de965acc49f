package node

import (
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

func wireImage(img image.Image) nodeapi.Image {
	c := img.Config.Config
	return nodeapi.Image{
		Name: img.Name, Digest: string(img.Digest), Size: img.Size, Layers: len(img.Layers),
		Architecture: img.Config.Architecture, Entrypoint: c.Entrypoint, Cmd: c.Cmd, User: c.User,
		Imported: img.Imported,
	}
}

func (d *Daemon) handleImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := d.images.List()
	if err != nil {
		return err
	}
	out := make([]nodeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, wireImage(img))
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
		out = append(out, wireImage(img))
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (d *Daemon) handleImage(w http.ResponseWriter, r *http.Request) error {
	img, err := d.images.Resolve(r.PathValue("ref"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireImage(img))
}

func (d *Daemon) handleRemoveImage(w http.ResponseWriter, r *http.Request) error {
	if err := d.images.Remove(r.PathValue("ref"), d.imageInUse); err != nil {
		return err
	}
	d.log.Info("image removed", "ref", r.PathValue("ref"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// imageInUse reports whether any container, running or not, was made
// from the image: its rootfs is stacked on the image's layers.
func (d *Daemon) imageInUse(m digest.Digest) bool {
	for _, c := range d.List() {
		if c.ImageDigest == string(m) {
			return true
		}
	}
	return false
}
