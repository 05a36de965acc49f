package build

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blob is content stored under blobs/sha256/ in the layout.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{
		desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		data: data,
	}
}

// jsonBlob marshals v; encoding/json writes struct fields in declaration order
// and map keys sorted, so equal values give equal bytes.
func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, fmt.Errorf("marshal %s: %w", mediaType, err)
	}
	return newBlob(mediaType, data), nil
}

// writeLayout writes the OCI image layout as a tar: oci-layout, index.json,
// blobs/, blobs/sha256/ and the blobs by digest, all with mtime.
func writeLayout(w io.Writer, index []byte, blobs []blob, mtime time.Time) error {
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("marshal oci-layout: %w", err)
	}
	tw := tar.NewWriter(w)
	if err := writeFile(tw, ocispec.ImageLayoutFile, layout, mtime); err != nil {
		return err
	}
	if err := writeFile(tw, ocispec.ImageIndexFile, index, mtime); err != nil {
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
	}
	blobs = slices.Clone(blobs)
	slices.SortFunc(blobs, func(a, b blob) int { return strings.Compare(string(a.desc.Digest), string(b.desc.Digest)) })
	for i, b := range blobs {
		if i > 0 && blobs[i-1].desc.Digest == b.desc.Digest {
			continue // equal content is stored once
		}
		if err := writeFile(tw, "blobs/sha256/"+b.desc.Digest.Encoded(), b.data, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
