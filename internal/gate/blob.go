package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/partial"
)

// sendBlob writes one blob, from offset on, to stdout: how a node fetches
// image blobs from a peer that has them. The blob comes from the image
// store or, while the image is still being assembled there, whole from
// the upload inbox (never a partial upload). It is opened without
// following links and must be a regular file; its content is checked
// against its digest by the node that receives it.
func sendBlob(dir, inbox, digest string, offset int64, stdout io.Writer) error {
	hex := strings.TrimPrefix(digest, "sha256:")
	paths := []string{filepath.Join(dir, hex)}
	if inbox != "" {
		// The store again last: verified and renamed there since the first look?
		paths = append(paths, filepath.Join(inbox, nodeapi.InboxBlobPath(digest)), filepath.Join(dir, hex))
	}
	f, info, err := openBlob(context.Background(), digest, paths, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if offset > info.Size() {
		return fmt.Errorf("blob %s: offset %d past its %d bytes: %w", digest, offset, info.Size(), errs.ErrInvalid)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(stdout, f)
	return err
}

// Following a blob that is still arriving: how long the gate waits for it
// to appear or to grow before it gives up, and how often it looks.
var (
	followStall = 30 * time.Second
	followPoll  = 20 * time.Millisecond
)

// followBlob writes bytes [offset, size) of a blob to stdout, following it
// while it is still arriving in the inbox, so that a node can pass an
// image on while it receives it. Of a blob still being written it sends
// only what its writer published as written without gaps (package
// partial); it waits for the blob to appear and to grow, and gives up
// when it has not grown for followStall. The receiving node checks the
// whole blob against its digest.
func followBlob(ctx context.Context, dir, inbox, digest string, offset, size int64, stdout io.Writer) error {
	hex := strings.TrimPrefix(digest, "sha256:")
	paths := []string{filepath.Join(dir, hex)}
	if inbox != "" {
		blob := filepath.Join(inbox, nodeapi.InboxBlobPath(digest))
		paths = append(paths, blob, blob+nodeapi.PartSuffix)
	}
	f, info, err := openBlob(ctx, digest, paths, followStall)
	if err != nil {
		return err
	}
	defer f.Close()
	arriving := inbox != "" && f.Name() == paths[len(paths)-1]
	if !arriving && info.Size() != size {
		return fmt.Errorf("blob %s: %d bytes here, not %d: %w", digest, info.Size(), size, errs.ErrInvalid)
	}
	buf := make([]byte, 256<<10)
	pos, grew := offset, time.Now()
	for pos < size {
		avail := size
		if arriving {
			avail = available(f, size)
		}
		if avail > pos {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), avail-pos)], pos)
			if n > 0 {
				if _, err := stdout.Write(buf[:n]); err != nil {
					return err
				}
				pos += int64(n)
				grew = time.Now()
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("blob %s: %w", digest, err)
			}
		}
		if st, err := f.Stat(); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink == 0 {
				return fmt.Errorf("blob %s: the upload was discarded at %d of %d bytes: %w", digest, pos, size, errs.ErrUnavailable)
			}
		}
		if time.Since(grew) > followStall {
			return fmt.Errorf("blob %s: stopped arriving at %d of %d bytes: %w", digest, pos, size, errs.ErrUnavailable)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
	return nil
}

// openBlob opens the first of paths that exists, as a regular file,
// waiting up to wait for one to.
func openBlob(ctx context.Context, digest string, paths []string, wait time.Duration) (*os.File, fs.FileInfo, error) {
	deadline := time.Now().Add(wait)
	for {
		for _, p := range paths {
			f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("blob %s: %w", digest, err)
			}
			info, err := f.Stat()
			if err != nil || !info.Mode().IsRegular() {
				f.Close()
				return nil, nil, fmt.Errorf("blob %s: not a regular file: %w", digest, errs.ErrInvalid)
			}
			return f, info, nil
		}
		if !time.Now().Before(deadline) {
			return nil, nil, fmt.Errorf("blob %s: not on this node: %w", digest, errs.ErrNotFound)
		}
		if err := pause(ctx); err != nil {
			return nil, nil, err
		}
	}
}

// available is how much of an arriving blob may be sent: what its writer
// published as written without gaps, or all of it once it is whole and
// nobody writes it any more.
func available(f *os.File, size int64) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	w, _ := partial.Written(f)
	if w >= size || (st.Size() >= size && !partial.Writing(f)) {
		return size
	}
	return min(w, st.Size())
}

func pause(ctx context.Context) error {
	t := time.NewTimer(followPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
