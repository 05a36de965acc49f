package rrd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The encoding is fixed-size for a given spec, little-endian:
//
//	header   "MRRD", version uint16, archives uint16, dropped uint64       (16)
//	archive  step int64 ns, rows uint32, started uint8, last int64,
//	         sum, min, max float64, n uint64                               (53)
//	         then rows × (avg, min, max float32, n uint16)                 (14 each)
//
// With Default that is 16 + 4×53 + 80,880×14 = 1,132,548 bytes per series.
const (
	magic       = "MRRD"
	version     = 1
	headerSize  = 16
	archiveHead = 53
	rowSize     = 14
)

// ErrCorrupt is wrapped by every UnmarshalBinary error about the bytes.
var ErrCorrupt = errors.New("rrd: corrupt encoding")

// Size is the length of the encoding of a series with this spec.
func (sp Spec) Size() int {
	n := headerSize
	for _, a := range sp {
		n += archiveHead + a.Rows*rowSize
	}
	return n
}

// MarshalBinary encodes the series in Spec().Size() bytes.
func (s *Series) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, s.Spec().Size())
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s.archives)))
	b = binary.LittleEndian.AppendUint64(b, s.dropped)
	for i := range s.archives {
		b = s.archives[i].append(b)
	}
	return b, nil
}

func (a *archive) append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint64(b, uint64(a.Step))
	b = le.AppendUint32(b, uint32(a.Rows))
	started := byte(0)
	if a.started {
		started = 1
	}
	b = append(b, started)
	b = le.AppendUint64(b, uint64(a.last))
	b = le.AppendUint64(b, math.Float64bits(a.sum))
	b = le.AppendUint64(b, math.Float64bits(a.min))
	b = le.AppendUint64(b, math.Float64bits(a.max))
	b = le.AppendUint64(b, a.n)
	for _, r := range a.rows {
		b = le.AppendUint32(b, math.Float32bits(r.avg))
		b = le.AppendUint32(b, math.Float32bits(r.min))
		b = le.AppendUint32(b, math.Float32bits(r.max))
		b = le.AppendUint16(b, r.n)
	}
	return b
}

// UnmarshalBinary replaces the series with the one encoded in b, spec
// included. Bytes of the wrong size, version or shape are refused with an
// error wrapping ErrCorrupt, and the series is left as it was.
func (s *Series) UnmarshalBinary(b []byte) error {
	le := binary.LittleEndian
	if len(b) < headerSize || string(b[:4]) != magic {
		return fmt.Errorf("%w: no rrd header", ErrCorrupt)
	}
	if v := le.Uint16(b[4:]); v != version {
		return fmt.Errorf("%w: version %d, want %d", ErrCorrupt, v, version)
	}
	sp, err := readSpec(b)
	if err != nil {
		return err
	}
	if len(b) != sp.Size() {
		return fmt.Errorf("%w: %d bytes, want %d for %d archives", ErrCorrupt, len(b), sp.Size(), len(sp))
	}
	next := &Series{archives: make([]archive, len(sp)), dropped: le.Uint64(b[8:])}
	off := headerSize
	for i, a := range sp {
		ar, err := readArchive(a, b[off:off+archiveHead+a.Rows*rowSize])
		if err != nil {
			return fmt.Errorf("archive %d: %w", i, err)
		}
		next.archives[i] = ar
		off += archiveHead + a.Rows*rowSize
	}
	*s = *next
	return nil
}

// readSpec reads the archives' steps and rows, checking each head fits in b
// before reading it.
func readSpec(b []byte) (Spec, error) {
	n := int(binary.LittleEndian.Uint16(b[6:]))
	if n == 0 || n > maxArchives {
		return nil, fmt.Errorf("%w: %d archives", ErrCorrupt, n)
	}
	sp := make(Spec, 0, n)
	off := headerSize
	for i := 0; i < n; i++ {
		if len(b) < off+archiveHead {
			return nil, fmt.Errorf("%w: truncated at archive %d", ErrCorrupt, i)
		}
		a := Archive{
			Step: time.Duration(binary.LittleEndian.Uint64(b[off:])),
			Rows: int(binary.LittleEndian.Uint32(b[off+8:])),
		}
		sp = append(sp, a)
		if err := sp.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		off += archiveHead + a.Rows*rowSize
	}
	return sp, nil
}

func readArchive(sp Archive, b []byte) (archive, error) {
	le := binary.LittleEndian
	a := archive{Archive: sp, rows: make([]row, sp.Rows)}
	switch b[12] {
	case 0:
	case 1:
		a.started = true
	default:
		return a, fmt.Errorf("%w: started flag %d", ErrCorrupt, b[12])
	}
	a.last = int64(le.Uint64(b[13:]))
	a.sum = math.Float64frombits(le.Uint64(b[21:]))
	a.min = math.Float64frombits(le.Uint64(b[29:]))
	a.max = math.Float64frombits(le.Uint64(b[37:]))
	a.n = le.Uint64(b[45:])
	if !a.started && a.n != 0 {
		return a, fmt.Errorf("%w: samples in an archive never started", ErrCorrupt)
	}
	for j := range a.rows {
		r := b[archiveHead+j*rowSize:]
		a.rows[j] = row{
			avg: math.Float32frombits(le.Uint32(r)),
			min: math.Float32frombits(le.Uint32(r[4:])),
			max: math.Float32frombits(le.Uint32(r[8:])),
			n:   le.Uint16(r[12:]),
		}
	}
	return a, nil
}
