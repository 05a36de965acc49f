package layer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatalf("gzip: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("close gzip: %v", err)
	}
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatalf("new zstd writer: %v", err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatalf("zstd: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("close zstd: %v", err)
	}
	return buf.Bytes()
}

func TestDecompress(t *testing.T) {
	tarball := mustTar(t, file("bin/sh", "#!"), file("usr/bin/curl", "ELF"))
	tests := []struct {
		name string
		blob []byte
		want []byte
	}{
		{"plain tar", tarball, tarball},
		{"gzip", gzipped(t, tarball), tarball},
		{"zstd", zstded(t, tarball), tarball},
		{"empty", nil, nil},
		{"shorter than any magic", []byte{0x1f}, []byte{0x1f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.blob))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := rc.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Decompress read %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	tests := []struct {
		name string
		blob []byte
		is   error // nil: any error
	}{
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x04}, ErrUnsupportedCompression},
		{"truncated gzip header", []byte{0x1f, 0x8b, 0x08}, nil},
		{"bad zstd frame", []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.blob))
			if err == nil {
				// Some decoders only notice corruption on read.
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil {
				t.Fatal("Decompress and read succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
		})
	}
}

func TestDecompressReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Decompress(io.MultiReader(bytes.NewReader([]byte{0x1f}), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Errorf("Decompress error %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
