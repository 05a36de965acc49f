package gate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/partial"
)

// followSetup makes a store and an inbox, and a blob's content and digest.
func followSetup(t *testing.T, size int) (store, inbox string, content []byte, d string) {
	t.Helper()
	dir := t.TempDir()
	store, inbox = filepath.Join(dir, "blobs"), filepath.Join(dir, "inbox")
	os.MkdirAll(store, 0o700)
	os.MkdirAll(filepath.Join(inbox, "blobs"), 0o700)
	content = make([]byte, size)
	rand.Read(content)
	return store, inbox, content, string(digest.FromBytes(content))
}

func partPath(inbox, d string) string {
	return filepath.Join(inbox, "blobs", "sha256-"+digest.Digest(d).Encoded()+".part")
}

// TestFollowBlob: a blob written out of order, as SFTP uploads are, is
// followed while it arrives and sent without a byte of its gaps; once
// whole and renamed it is still read through.
func TestFollowBlob(t *testing.T) {
	const chunk = 256 << 10
	store, inbox, content, d := followSetup(t, 40*chunk)
	part := partPath(inbox, d)
	w, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	partial.Lock(w)
	tr := partial.NewTracker(w, 0)
	go func() {
		// Pairs of chunks, the second of each pair first.
		for i := 0; i < 40; i += 2 {
			for _, j := range []int{i + 1, i} {
				off := int64(j * chunk)
				w.WriteAt(content[off:off+chunk], off)
				tr.Wrote(off, chunk)
			}
			time.Sleep(5 * time.Millisecond)
		}
		tr.Flush()
		w.Close()
		os.Rename(part, filepath.Join(inbox, "blobs", "sha256-"+digest.Digest(d).Encoded()))
	}()
	var out bytes.Buffer
	if err := followBlob(context.Background(), store, inbox, d, 1000, int64(len(content)), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), content[1000:]) {
		t.Fatalf("followed %d bytes that differ from the blob's %d", out.Len(), len(content)-1000)
	}
}

// TestFollowBlobEnds: a blob that is discarded, stops arriving or never
// comes ends the follow with an error saying so; a whole blob of another
// size is refused.
func TestFollowBlobEnds(t *testing.T) {
	stall, poll := followStall, followPoll
	followStall, followPoll = 300*time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { followStall, followPoll = stall, poll })

	t.Run("discarded", func(t *testing.T) {
		store, inbox, content, d := followSetup(t, 4<<20)
		w, _ := os.Create(partPath(inbox, d))
		partial.Lock(w)
		tr := partial.NewTracker(w, 0)
		w.WriteAt(content[:2<<20], 0)
		tr.Wrote(0, 2<<20)
		// Discarded once the follower has what was written.
		out := &onWrite{at: 2 << 20, do: func() { os.Remove(partPath(inbox, d)) }}
		err := followBlob(context.Background(), store, inbox, d, 0, int64(len(content)), out)
		w.Close()
		if !errors.Is(err, errs.ErrUnavailable) || !bytesIn(err, "discarded") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		store, inbox, content, d := followSetup(t, 4<<20)
		w, _ := os.Create(partPath(inbox, d))
		defer w.Close()
		partial.Lock(w)
		tr := partial.NewTracker(w, 0)
		w.WriteAt(content[:2<<20], 0)
		tr.Wrote(0, 2<<20)
		var out bytes.Buffer
		err := followBlob(context.Background(), store, inbox, d, 0, int64(len(content)), &out)
		if !errors.Is(err, errs.ErrUnavailable) || !bytesIn(err, "stopped arriving") || out.Len() != 2<<20 {
			t.Errorf("err = %v after %d bytes", err, out.Len())
		}
	})
	t.Run("never comes", func(t *testing.T) {
		store, inbox, _, d := followSetup(t, 10)
		err := followBlob(context.Background(), store, inbox, d, 0, 10, &bytes.Buffer{})
		if !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("another size", func(t *testing.T) {
		store, inbox, content, d := followSetup(t, 10)
		os.WriteFile(filepath.Join(store, digest.Digest(d).Encoded()), content, 0o600)
		err := followBlob(context.Background(), store, inbox, d, 0, 11, &bytes.Buffer{})
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("err = %v", err)
		}
	})
}

func bytesIn(err error, s string) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte(s))
}

// onWrite runs do once at bytes have been written to it.
type onWrite struct {
	n, at int64
	do    func()
}

func (o *onWrite) Write(p []byte) (int, error) {
	before := o.n
	o.n += int64(len(p))
	if before < o.at && o.n >= o.at {
		o.do()
	}
	return len(p), nil
}
