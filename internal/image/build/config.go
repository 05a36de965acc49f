package build

import (
	"maps"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// specsVersion is the schemaVersion of manifests and indexes.
var specsVersion = specs.Versioned{SchemaVersion: 2}

// imageConfig is the image configuration for normalized opts and the layer
// with diff_id diffID.
func imageConfig(opts Options, diffID digest.Digest) ocispec.Image {
	created := opts.Created
	cfg := ocispec.ImageConfig{
		User:       opts.User,
		Env:        opts.Env,
		Entrypoint: opts.Entrypoint,
		Cmd:        opts.Cmd,
		WorkingDir: opts.WorkDir,
		Labels:     maps.Clone(opts.Labels),
	}
	if len(opts.Ports) > 0 {
		cfg.ExposedPorts = make(map[string]struct{}, len(opts.Ports))
		for _, p := range opts.Ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	return ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: opts.Arch, OS: opts.OS},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
}

// indexEntry is the manifest's descriptor as index.json lists it: with its
// platform and, when opts.Name is set, the ref.name annotation.
func indexEntry(manifest ocispec.Descriptor, opts Options) ocispec.Descriptor {
	manifest.Platform = &ocispec.Platform{Architecture: opts.Arch, OS: opts.OS}
	if opts.Name != "" {
		manifest.Annotations = map[string]string{ocispec.AnnotationRefName: opts.Name}
	}
	return manifest
}
