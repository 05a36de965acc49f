package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Slot layout, little endian:
//
//	[0:8)   sequence number (0 marks a slot never written)
//	[8:16)  record time, Unix nanoseconds
//	[16:20) payload length
//	[20:24) CRC32C over bytes [0:20) and the payload
//	[24:24+length) payload; the rest of the slot is zero
const slotHeaderSize = 24

// Header slot layout: magic, version, slot size, slot count, CRC32C over
// what precedes it. The header takes a whole slot so data slots stay aligned.
const (
	magic          = "MOATRING"
	version        = 1
	fileHeaderSize = 8 + 4 + 4 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadSlot says a slot failed its checks: torn, corrupt or never written.
var errBadSlot = errors.New("bad slot")

// encodeSlot writes a record into buf (one whole slot), zeroing the tail so
// the bytes on disk never mix two records.
func encodeSlot(buf []byte, seq uint64, t time.Time, payload []byte) {
	binary.LittleEndian.PutUint64(buf[0:8], seq)
	binary.LittleEndian.PutUint64(buf[8:16], uint64(t.UnixNano()))
	binary.LittleEndian.PutUint32(buf[16:20], uint32(len(payload)))
	n := copy(buf[slotHeaderSize:], payload)
	clear(buf[slotHeaderSize+n:])
	sum := crc32.Update(crc32.Checksum(buf[0:20], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(buf[20:24], sum)
}

// decodeSlot checks a slot and returns its fields; payload aliases buf.
func decodeSlot(buf []byte) (seq uint64, t time.Time, payload []byte, err error) {
	seq = binary.LittleEndian.Uint64(buf[0:8])
	n := binary.LittleEndian.Uint32(buf[16:20])
	if seq == 0 || uint64(n) > uint64(len(buf)-slotHeaderSize) {
		return 0, time.Time{}, nil, errBadSlot
	}
	payload = buf[slotHeaderSize : slotHeaderSize+int(n)]
	sum := crc32.Update(crc32.Checksum(buf[0:20], castagnoli), castagnoli, payload)
	if sum != binary.LittleEndian.Uint32(buf[20:24]) {
		return 0, time.Time{}, nil, errBadSlot
	}
	t = time.Unix(0, int64(binary.LittleEndian.Uint64(buf[8:16])))
	return seq, t, payload, nil
}

// geometry is what the header records and what must match on reopen.
type geometry struct {
	slotSize  uint32
	slotCount uint64
}

func encodeHeader(buf []byte, g geometry) {
	clear(buf)
	copy(buf[0:8], magic)
	binary.LittleEndian.PutUint32(buf[8:12], version)
	binary.LittleEndian.PutUint32(buf[12:16], g.slotSize)
	binary.LittleEndian.PutUint64(buf[16:24], g.slotCount)
	binary.LittleEndian.PutUint32(buf[24:28], crc32.Checksum(buf[0:24], castagnoli))
}

func decodeHeader(buf []byte) (geometry, error) {
	if len(buf) < fileHeaderSize {
		return geometry{}, fmt.Errorf("header: %d bytes, want %d", len(buf), fileHeaderSize)
	}
	if string(buf[0:8]) != magic {
		return geometry{}, fmt.Errorf("header: not a metrics ring (magic %q)", buf[0:8])
	}
	if crc32.Checksum(buf[0:24], castagnoli) != binary.LittleEndian.Uint32(buf[24:28]) {
		return geometry{}, errors.New("header: checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(buf[8:12]); v != version {
		return geometry{}, fmt.Errorf("header: version %d, this build reads %d", v, version)
	}
	return geometry{
		slotSize:  binary.LittleEndian.Uint32(buf[12:16]),
		slotCount: binary.LittleEndian.Uint64(buf[16:24]),
	}, nil
}
