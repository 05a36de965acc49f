package image

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/errs"
)

const containerdNameAnnotation = "io.containerd.image.name"

func hostArch() string { return runtime.GOARCH }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// ociImages finds the images of this machine's platform in an OCI layout.
func ociImages(a *archive) ([]pending, error) {
	var idx ocispec.Index
	if _, err := readJSON(a, "index.json", "", &idx); err != nil {
		return nil, err
	}
	var out []pending
	var others []string
	var walk func(descs []ocispec.Descriptor, name string, depth int) error
	walk = func(descs []ocispec.Descriptor, inherited string, depth int) error {
		if depth > 4 {
			return fmt.Errorf("image indexes nested deeper than 4: %w", errs.ErrInvalid)
		}
		for _, desc := range descs {
			if err := checkDigest(desc.Digest); err != nil {
				return fmt.Errorf("index: %w", err)
			}
			name := refName(desc.Annotations, inherited)
			switch {
			case isIndexType(desc.MediaType):
				var child ocispec.Index
				if _, err := readJSON(a, blobName(desc.Digest), desc.Digest, &child); err != nil {
					return err
				}
				if err := walk(child.Manifests, name, depth+1); err != nil {
					return err
				}
			case isManifestType(desc.MediaType):
				if p := desc.Platform; p != nil && (p.OS != "linux" || p.Architecture != hostArch()) {
					others = append(others, p.OS+"/"+p.Architecture)
					continue
				}
				p, err := ociPending(a, desc, name)
				if err != nil {
					return err
				}
				out = append(out, p)
			}
		}
		return nil
	}
	if err := walk(idx.Manifests, "", 0); err != nil {
		return nil, err
	}
	if len(out) == 0 && len(others) > 0 {
		slices.Sort(others)
		return nil, fmt.Errorf("no linux/%s image in the archive, only %s: %w", hostArch(), strings.Join(slices.Compact(others), ", "), errs.ErrInvalid)
	}
	return out, nil
}

func refName(ann map[string]string, inherited string) string {
	if n := ann[containerdNameAnnotation]; n != "" {
		return NormalizeName(n)
	}
	if n := ann[ocispec.AnnotationRefName]; n != "" {
		return NormalizeName(n)
	}
	return inherited
}

func ociPending(a *archive, desc ocispec.Descriptor, name string) (pending, error) {
	mb, err := a.readSmall(blobName(desc.Digest))
	if err != nil {
		return pending{}, err
	}
	if digest.FromBytes(mb) != desc.Digest {
		return pending{}, fmt.Errorf("manifest %s: content hashes to %s: %w", desc.Digest, digest.FromBytes(mb), errs.ErrInvalid)
	}
	m, err := parseManifest(mb)
	if err != nil {
		return pending{}, fmt.Errorf("image %s: %w", desc.Digest, err)
	}
	var cfg json.RawMessage
	cb, err := readJSON(a, blobName(m.Config.Digest), m.Config.Digest, &cfg)
	if err != nil {
		return pending{}, fmt.Errorf("image %s: config: %w", desc.Digest, err)
	}
	img, err := resolveImage(m, cb)
	if err != nil {
		return pending{}, fmt.Errorf("image %s: %w", desc.Digest, err)
	}
	img.Size += int64(len(mb))
	p := pending{name: name, manifest: desc.Digest, img: img, sources: map[digest.Digest]string{}}
	p.sources[desc.Digest] = blobName(desc.Digest)
	p.sources[m.Config.Digest] = blobName(m.Config.Digest)
	for _, l := range img.Layers {
		p.sources[l.Digest] = blobName(l.Digest)
	}
	return p, nil
}

type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerImages converts the images of a docker save archive into OCI
// manifests of moat's own making (docker save has none of its own).
func dockerImages(a *archive) ([]pending, error) {
	var entries []dockerEntry
	if _, err := readJSON(a, "manifest.json", "", &entries); err != nil {
		return nil, err
	}
	var out []pending
	for i, e := range entries {
		p, err := dockerPending(a, e)
		if err != nil {
			return nil, fmt.Errorf("manifest.json[%d]: %w", i, err)
		}
		if len(e.RepoTags) == 0 {
			out = append(out, p)
		}
		for _, tag := range e.RepoTags {
			p.name = NormalizeName(tag)
			out = append(out, p)
		}
	}
	return out, nil
}

func dockerPending(a *archive, e dockerEntry) (pending, error) {
	cb, err := a.readSmall(e.Config)
	if err != nil {
		return pending{}, fmt.Errorf("config: %w", err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))},
	}
	sources := map[digest.Digest]string{m.Config.Digest: e.Config}
	for _, path := range e.Layers {
		r, size, err := a.open(path)
		if err != nil {
			return pending{}, fmt.Errorf("layer: %w", err)
		}
		d, mt, err := hashLayer(r)
		if err != nil {
			return pending{}, fmt.Errorf("layer %s: %w", path, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
		sources[d] = path
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return pending{}, err
	}
	img, err := resolveImage(m, cb)
	if err != nil {
		return pending{}, err
	}
	md := digest.FromBytes(mb)
	img.Size += int64(len(mb))
	sources[md] = ""
	return pending{manifest: md, img: img, sources: sources, generated: map[digest.Digest][]byte{md: mb}}, nil
}

// hashLayer digests a layer file and names its media type from its magic.
func hashLayer(r io.Reader) (digest.Digest, string, error) {
	h := sha256.New()
	br := bufio.NewReader(io.TeeReader(r, h))
	head, _ := br.Peek(4)
	mt := ocispec.MediaTypeImageLayer
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		mt = ocispec.MediaTypeImageLayerGzip
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		mt = ocispec.MediaTypeImageLayerZstd
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", "", err
	}
	return digest.NewDigest(digest.SHA256, h), mt, nil
}
