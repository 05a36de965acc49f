package ring

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// create writes a ring at its full size under a temporary name and renames
// it into place, so a crash during creation never leaves a short ring.
func create(path string, geo geometry) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".new*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := fill(tmp, geo); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// fill writes the header and allocates every data slot. Zeros are written
// (not a sparse truncate) so the blocks are taken now and an append never
// fails for want of space later.
func fill(f *os.File, geo geometry) error {
	hdr := make([]byte, geo.slotSize)
	encodeHeader(hdr, geo)
	size := int64(geo.slotCount+1) * int64(geo.slotSize)
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
		_, err := f.WriteAt(hdr, 0)
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	zero := make([]byte, geo.slotSize)
	for range geo.slotCount {
		if _, err := w.Write(zero); err != nil {
			return err
		}
	}
	return w.Flush()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load checks the header and size against the wanted geometry, then scans
// every slot: the head is the highest valid sequence, and a slot that is
// torn, corrupt or outside the head's window is ignored.
func (r *Ring) load() error {
	st, err := r.f.Stat()
	if err != nil {
		return err
	}
	hdr := make([]byte, fileHeaderSize)
	if _, err := r.f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	geo, err := decodeHeader(hdr)
	if err != nil {
		return err
	}
	if geo != r.geo {
		return fmt.Errorf("geometry differs: file has %d slots of %d bytes, asked for %d slots of %d bytes (remove the file to start afresh)",
			geo.slotCount, geo.slotSize, r.geo.slotCount, r.geo.slotSize)
	}
	if want := int64(geo.slotCount+1) * int64(geo.slotSize); st.Size() != want {
		return fmt.Errorf("size %d bytes, geometry says %d", st.Size(), want)
	}
	seqs, err := r.scan()
	if err != nil {
		return err
	}
	r.window(seqs)
	return nil
}

// scan returns the valid sequence in each slot (0 where none).
func (r *Ring) scan() ([]uint64, error) {
	seqs := make([]uint64, r.geo.slotCount)
	rd := bufio.NewReaderSize(io.NewSectionReader(r.f, int64(r.geo.slotSize), int64(r.geo.slotCount)*int64(r.geo.slotSize)), 1<<20)
	for i := range seqs {
		if _, err := io.ReadFull(rd, r.buf); err != nil {
			return nil, fmt.Errorf("scan slot %d: %w", i, err)
		}
		seq, _, _, err := decodeSlot(r.buf)
		if err == nil && (seq-1)%r.geo.slotCount == uint64(i) {
			seqs[i] = seq
		}
	}
	return seqs, nil
}

// window sets newest to the highest sequence and oldest to the lowest valid
// one within a ring's length of it; older survivors (a write lost to power
// failure can leave one) are not part of the ring.
func (r *Ring) window(seqs []uint64) {
	for _, s := range seqs {
		r.newest = max(r.newest, s)
	}
	if r.newest == 0 {
		return
	}
	low := uint64(1)
	if r.newest > r.geo.slotCount {
		low = r.newest - r.geo.slotCount + 1
	}
	r.oldest = r.newest
	for _, s := range seqs {
		if s >= low && s < r.oldest {
			r.oldest = s
		}
	}
}
