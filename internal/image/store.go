package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/layer"
)

// Options tune a store.
type Options struct {
	// MaxLayerBytes bounds the unpacked size of one layer (0: layer's default).
	MaxLayerBytes int64
	// ReadOnly opens a store another process (the daemon) owns, to read it:
	// nothing is created or cleaned.
	ReadOnly bool
}

// Store is an image store rooted at a directory:
//
//	blobs/sha256/<hex>   content-addressed blobs
//	ingest/              partial writes, removed on open
//	layers/<diffid>/fs   unpacked layers; l/<id> are short links to them
//	index.json           image names → manifest digests
type Store struct {
	root string
	opts Options

	mu       sync.Mutex // guards index.json and the layer locks map
	layers   map[digest.Digest]*sync.Mutex
	importMu sync.Mutex // one import or removal commits at a time
}

// Image is an image in the store, resolved down to its layers.
type Image struct {
	Name         string        `json:"name,omitempty"`
	Digest       digest.Digest `json:"digest"` // the manifest's
	ConfigDigest digest.Digest `json:"configDigest"`
	Config       ocispec.Image `json:"config"`
	Layers       []Layer       `json:"layers"`
	Size         int64         `json:"size"` // sum of blob sizes
	Imported     time.Time     `json:"imported"`
	Signers      []string      `json:"signers,omitempty"` // fingerprints of the keys that signed it
}

// Layer is one layer of an image.
type Layer struct {
	Digest    digest.Digest `json:"digest"`
	DiffID    digest.Digest `json:"diffID"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
}

type indexEntry struct {
	Name     string        `json:"name,omitempty"`
	Digest   digest.Digest `json:"digest"`
	Imported time.Time     `json:"imported"`
}

// Open opens (creating if needed) the store at root and clears what an
// interrupted write left behind.
func Open(root string, opts Options) (*Store, error) {
	if opts.ReadOnly {
		if _, err := os.Stat(filepath.Join(root, "blobs")); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
		return &Store{root: root, opts: opts, layers: map[digest.Digest]*sync.Mutex{}}, nil
	}
	for _, d := range []string{"blobs/sha256", "ingest", "layers", "l"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	s := &Store{root: root, opts: opts, layers: map[digest.Digest]*sync.Mutex{}}
	if err := s.clean(); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return s, nil
}

// clean removes partial blobs and layers and links that point nowhere.
func (s *Store) clean() error {
	if err := os.RemoveAll(filepath.Join(s.root, "ingest")); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.root, "ingest"), 0o700); err != nil {
		return err
	}
	tmps, _ := filepath.Glob(filepath.Join(s.root, "layers", "tmp-*"))
	for _, t := range tmps {
		if err := os.RemoveAll(t); err != nil {
			return err
		}
	}
	links, _ := filepath.Glob(filepath.Join(s.root, "l", "*"))
	for _, l := range links {
		if _, err := os.Stat(l); errors.Is(err, fs.ErrNotExist) {
			os.Remove(l)
		}
	}
	return nil
}

func (s *Store) readIndex() ([]indexEntry, error) {
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	var idx []indexEntry
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	return idx, nil
}

func (s *Store) writeIndex(idx []indexEntry) error {
	slices.SortFunc(idx, func(a, b indexEntry) int {
		return strings.Compare(a.Name+"@"+string(a.Digest), b.Name+"@"+string(b.Digest))
	})
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.root, "index.json"), b)
}

// List returns every image in the store, sorted by name.
func (s *Store) List() ([]Image, error) {
	s.mu.Lock()
	idx, err := s.readIndex()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(idx))
	for _, e := range idx {
		img, err := s.load(e)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Resolve finds an image by name ("demo:1"; "demo" means "demo:latest"), by
// manifest digest, or by a unique prefix of at least 8 hex digits of it.
func (s *Store) Resolve(ref string) (Image, error) {
	s.mu.Lock()
	idx, err := s.readIndex()
	s.mu.Unlock()
	if err != nil {
		return Image{}, err
	}
	e, err := lookup(idx, ref)
	if err != nil {
		return Image{}, err
	}
	return s.load(e)
}

func lookup(idx []indexEntry, ref string) (indexEntry, error) {
	name := NormalizeName(ref)
	for _, e := range idx {
		if e.Name != "" && e.Name == name {
			return e, nil
		}
	}
	// Docker Hub's long form, as skopeo and podman write it: "web:1" finds
	// "docker.io/library/web:1".
	if !strings.Contains(name, "/") {
		for _, e := range idx {
			if e.Name == "docker.io/library/"+name {
				return e, nil
			}
		}
	}
	hexRef := strings.TrimPrefix(ref, "sha256:")
	var found []indexEntry
	if len(hexRef) >= 8 && isHex(hexRef) {
		for _, e := range idx {
			if strings.HasPrefix(e.Digest.Encoded(), hexRef) && !slices.ContainsFunc(found, func(f indexEntry) bool { return f.Digest == e.Digest }) {
				found = append(found, e)
			}
		}
	}
	switch len(found) {
	case 0:
		return indexEntry{}, fmt.Errorf("image %q: %w", ref, errs.ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return indexEntry{}, fmt.Errorf("image %q: prefix matches %d images: %w", ref, len(found), errs.ErrInvalid)
	}
}

// NormalizeName adds ":latest" to a name without a tag or digest.
func NormalizeName(name string) string {
	if name == "" || strings.Contains(name, "@") {
		return name
	}
	last := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(last, ":") {
		return name + ":latest"
	}
	return name
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// load reads an index entry's manifest and config.
func (s *Store) load(e indexEntry) (Image, error) {
	mb, err := s.ReadBlob(e.Digest)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: manifest: %w", e.Digest, err)
	}
	m, err := parseManifest(mb)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", e.Digest, err)
	}
	cb, err := s.ReadBlob(m.Config.Digest)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: config: %w", e.Digest, err)
	}
	img, err := resolveImage(m, cb)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", e.Digest, err)
	}
	img.Name, img.Digest, img.Imported = e.Name, e.Digest, e.Imported
	img.Size += int64(len(mb))
	img.Signers = s.Signers(e.Digest)
	return img, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp-" + randomID(4)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (s *Store) layerOptions() layer.Options {
	return layer.Options{MaxBytes: s.opts.MaxLayerBytes}
}

// DiskUsage is the space the store takes: blobs, unpacked layers and
// signatures (what image GC can give back).
func (s *Store) DiskUsage() int64 {
	var total int64
	for _, d := range []string{"blobs", "layers", "signatures"} {
		total += dirSize(filepath.Join(s.root, d))
	}
	return total
}
