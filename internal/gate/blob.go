package gate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moatcloud/moat/internal/errs"
)

// sendBlob writes one blob, from offset on, to stdout: how a node fetches
// image blobs from a peer that has them. The blob comes from the image
// store or, while the image is still being assembled there, whole from
// the upload inbox (never a partial upload). It is opened without
// following links and must be a regular file; its content is checked
// against its digest by the node that receives it.
func sendBlob(dir, inbox, digest string, offset int64, stdout io.Writer) error {
	hex := strings.TrimPrefix(digest, "sha256:")
	f, err := os.OpenFile(filepath.Join(dir, hex), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) && inbox != "" {
		f, err = os.OpenFile(filepath.Join(inbox, "blobs", "sha256-"+hex), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			// Verified and renamed into the store since the first look?
			f, err = os.OpenFile(filepath.Join(dir, hex), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: not on this node: %w", digest, errs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("blob %s: not a regular file: %w", digest, errs.ErrInvalid)
	}
	if offset > info.Size() {
		return fmt.Errorf("blob %s: offset %d past its %d bytes: %w", digest, offset, info.Size(), errs.ErrInvalid)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(stdout, f)
	return err
}
