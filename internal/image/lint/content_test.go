package lint

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/moatcloud/moat/internal/image/ldso/ldsotest"
)

// TestReadContentLarge: an ELF file past what is read into memory goes
// through a temporary file and is read all the same.
func TestReadContentLarge(t *testing.T) {
	small := ldsotest.ELF{Interp: ldPath, Needed: []string{"libc.so.6"}}.Bytes()
	big := append(bytes.Clone(small), make([]byte, maxInMemory)...)
	for name, data := range map[string][]byte{"small": small, "big": big} {
		obj, _, err := readContent(bytes.NewReader(data), "/app", int64(len(data)))
		if err != nil || obj == nil || obj.Interp != ldPath {
			t.Errorf("%s: readContent = %+v, %v; want the object", name, obj, err)
		}
		_, _, err = readContent(bytes.NewReader(data), "/app", int64(len(data))+1)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s, one byte short: readContent error %v, want %v", name, err, io.ErrUnexpectedEOF)
		}
	}
}
