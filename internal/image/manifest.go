package image

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/errs"
)

// Media types moat reads besides the OCI ones: docker save archives and
// registries still produce Docker's v2 schema 2 types.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	dockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == dockerManifest
}

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == dockerManifestList
}

func isLayerType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still seen in the wild
		ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		dockerLayer, dockerLayerGzip:
		return true
	}
	return false
}

func parseManifest(b []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest: %v: %w", err, errs.ErrInvalid)
	}
	if m.SchemaVersion != 2 {
		return m, fmt.Errorf("manifest: schemaVersion %d, want 2: %w", m.SchemaVersion, errs.ErrInvalid)
	}
	if m.MediaType != "" && !isManifestType(m.MediaType) {
		return m, fmt.Errorf("manifest: media type %q is not an image manifest: %w", m.MediaType, errs.ErrInvalid)
	}
	if err := checkDigest(m.Config.Digest); err != nil {
		return m, fmt.Errorf("manifest: config: %w", err)
	}
	for i, l := range m.Layers {
		if err := checkDigest(l.Digest); err != nil {
			return m, fmt.Errorf("manifest: layers[%d]: %w", i, err)
		}
		if !isLayerType(l.MediaType) {
			return m, fmt.Errorf("manifest: layers[%d]: unsupported media type %q: %w", i, l.MediaType, errs.ErrInvalid)
		}
		if l.Size < 0 {
			return m, fmt.Errorf("manifest: layers[%d]: negative size: %w", i, errs.ErrInvalid)
		}
	}
	return m, nil
}

// resolveImage pairs a manifest's layers with the config's diff IDs.
func resolveImage(m ocispec.Manifest, configJSON []byte) (Image, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return Image{}, fmt.Errorf("config: %v: %w", err, errs.ErrInvalid)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return Image{}, fmt.Errorf("config: os %q: moat runs linux images: %w", cfg.OS, errs.ErrInvalid)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return Image{}, fmt.Errorf("config lists %d diff IDs for %d layers: %w", len(cfg.RootFS.DiffIDs), len(m.Layers), errs.ErrInvalid)
	}
	img := Image{ConfigDigest: m.Config.Digest, Config: cfg, Size: m.Config.Size}
	for i, l := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i]
		if err := checkDigest(diffID); err != nil {
			return Image{}, fmt.Errorf("config: rootfs.diff_ids[%d]: %w", i, err)
		}
		img.Layers = append(img.Layers, Layer{Digest: l.Digest, DiffID: diffID, MediaType: l.MediaType, Size: l.Size})
		img.Size += l.Size
	}
	return img, nil
}

// Blobs lists every blob the image needs: manifest, config, layers.
func (img Image) Blobs() []digest.Digest {
	out := []digest.Digest{img.Digest, img.ConfigDigest}
	for _, l := range img.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// ManifestBlobs lists the blobs a manifest names (config and layers), or
// nothing if it is not a valid manifest.
func ManifestBlobs(b []byte) []digest.Digest {
	m, err := parseManifest(b)
	if err != nil {
		return nil
	}
	out := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}
