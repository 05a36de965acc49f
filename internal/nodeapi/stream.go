package nodeapi

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// A debug session runs over an upgraded HTTP connection (Upgrade:
// moat-stream) carrying frames: one type byte, a 4-byte big-endian length,
// then the payload. The client sends stdin and stdin-close; the server
// sends stdout, stderr, and finally exit (4-byte big-endian code) or error.
const (
	UpgradeProtocol = "moat-stream"

	FrameStdin      byte = 0
	FrameStdout     byte = 1
	FrameStderr     byte = 2
	FrameExit       byte = 3
	FrameStdinClose byte = 4
	FrameError      byte = 5

	maxFrame = 1 << 20
)

// FrameWriter writes frames; safe for concurrent use.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter frames onto w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame.
func (fw *FrameWriter) WriteFrame(typ byte, payload []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := fw.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := fw.w.Write(payload)
	return err
}

// Writer returns an io.Writer that sends each write as frames of typ.
func (fw *FrameWriter) Writer(typ byte) io.Writer {
	return frameTypeWriter{fw, typ}
}

type frameTypeWriter struct {
	fw  *FrameWriter
	typ byte
}

func (w frameTypeWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += maxFrame {
		end := min(off+maxFrame, len(p))
		if err := w.fw.WriteFrame(w.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes: over the %d limit", n, maxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// DebugRequest asks to run a node tool in a container's namespaces.
type DebugRequest struct {
	Args []string `json:"args"`
}
