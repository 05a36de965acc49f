// Package build makes minimal OCI images from files: one layer, no shell, and
// the same digest for the same inputs.
//
// The output is an OCI image layout in a tar (oci-layout, index.json,
// blobs/sha256/...) holding one manifest, its config and one gzip-compressed
// layer. The layer depends only on the Options and on the content, type and
// permission bits of the source files: entries are sorted by path, every
// timestamp is Options.Created, owners are Options.UID:GID with no names, and
// source mtimes, owners and walk order are ignored.
//
// Directories the layer needs to hold the added paths (/usr, /usr/local, ...)
// are made up as root-owned 0755 directories; directories added from a source
// directory keep their permission bits and get Options.UID:GID like the files.
//
// Options.Binaries adds dynamically linked programs with what the loader
// needs to start them: their interpreter and shared libraries, found on
// the build machine as its ld.so would find them (package ldso). They
// then depend on the build machine's libraries as well as on the Options.
package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moatcloud/moat/internal/errs"
)

// File is one source to add to the image.
type File struct {
	Src  string      // path on the build host (file, directory or symlink)
	Dst  string      // absolute path in the image
	Mode fs.FileMode // permission bits to force on regular files; 0 keeps the source's permission bits (only perm bits, never setuid/setgid/sticky)
}

// Options describe the image to build.
type Options struct {
	Files []File
	// Binaries are ELF programs added with their interpreter and every
	// shared library they need, transitively, each where the image's
	// loader will look for it. A Binary's Mode applies to the program;
	// the others keep their source's permission bits.
	Binaries   []File
	Entrypoint []string
	Cmd        []string
	Env        []string          // K=V; PATH defaults to /usr/local/bin:/usr/bin:/bin if not given
	User       string            // "" → unset (the runtime then uses 65534); "1000" or "1000:1000"
	WorkDir    string            // absolute; the runtime creates it if missing
	Ports      []string          // exposed ports like "8080/tcp" (config.ExposedPorts); "8080" means tcp
	Labels     map[string]string // config.Labels
	// Privileges the image declares beyond moat's strict defaults
	// (package privilege): written to the org.moatcloud.privileges label,
	// which the signature over the manifest covers.
	Privileges []string
	Name       string    // image reference name, e.g. "demo:1"; stored as org.opencontainers.image.ref.name annotation on the index entry
	UID, GID   int       // owner of every added file (default 0:0)
	OS, Arch   string    // default "linux" and runtime.GOARCH
	Created    time.Time // zero → Unix epoch 0; the config's created field and every tar mtime use it, truncated to the second
}

// Build writes an OCI image layout tar (oci-layout, index.json,
// blobs/sha256/...) to w and returns the manifest's descriptor, as listed in
// index.json. Invalid options and unusable source files give errors that wrap
// errs.ErrInvalid. The layer is built in memory before anything is written.
func Build(ctx context.Context, w io.Writer, opts Options) (ocispec.Descriptor, error) {
	opts, err := normalize(opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	libs, err := binaryFiles(opts.Binaries)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	t, entries, err := collect(ctx, append(slices.Clone(opts.Files), libs...), opts.UID, opts.GID)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := checkProgram(t, opts); err != nil {
		return ocispec.Descriptor{}, err
	}
	var layerTar bytes.Buffer
	diffID, err := writeLayer(ctx, &layerTar, entries, opts.Created)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := newBlob(ocispec.MediaTypeImageLayerGzip, layerTar.Bytes())
	config, err := jsonBlob(ocispec.MediaTypeImageConfig, imageConfig(opts, diffID))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	manifest, err := jsonBlob(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specsVersion,
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config.desc,
		Layers:    []ocispec.Descriptor{layer.desc},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := indexEntry(manifest.desc, opts)
	index, err := jsonBlob(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specsVersion,
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := writeLayout(w, index.data, []blob{layer, config, manifest}, opts.Created); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// checkProgram checks that the program the image runs (Entrypoint[0], or
// Cmd[0] without an entrypoint) is an executable in the layer: with no shell
// and no package manager in the image, a typo here would only show at run time.
func checkProgram(t tree, opts Options) error {
	field, argv := "entrypoint", opts.Entrypoint
	if len(argv) == 0 {
		field, argv = "cmd", opts.Cmd
	}
	if len(argv) == 0 {
		return nil
	}
	e, ok := t[argv[0]]
	switch {
	case !ok:
		return errs.Invalid(field, "%s is not among the added files; add it with --add-binary SRC:%s (a dynamically linked program), --add SRC:%s, or fix the path", argv[0], argv[0], argv[0])
	case e.typ == tar.TypeDir:
		return errs.Invalid(field, "%s is a directory", argv[0])
	case e.typ == tar.TypeReg && e.mode&0o111 == 0:
		return errs.Invalid(field, "%s is not executable (mode %04o); add it with mode 0755", argv[0], e.mode)
	}
	return nil
}
