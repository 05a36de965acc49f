package lint

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	imglayer "github.com/moatcloud/moat/internal/image/layer"
)

// TestDecompressedLayers runs the path the CLI takes: blobs of mixed
// compression opened by imglayer.Decompress and handed to Layers.
func TestDecompressedLayers(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer(t, file("bin/sh", 0o755), file("usr/bin/curl", 0o755)))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{gz.Bytes(), layer(t, file("bin/.wh.sh", 0o644)), layer(t, file("usr/bin/strace", 0o755))}
	var rs []io.Reader
	for i, b := range blobs {
		rc, err := imglayer.Decompress(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decompress blob %d: %v", i, err)
		}
		defer rc.Close()
		rs = append(rs, rc)
	}
	got, err := Layers(rs)
	if err != nil {
		t.Fatalf("Layers: %v", err)
	}
	want := []Finding{
		{"/usr/bin/curl", NetworkTool, "curl"},
		{"/usr/bin/strace", Debugger, "strace"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings mismatch (-want +got):\n%s", diff)
	}
}
