package gate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// DefaultMaxUpload bounds any one uploaded file when ServeSFTP is given no
// limit.
const DefaultMaxUpload = 16 << 30

// ServeSFTP serves one SFTP session on rw (the SSH session's stdin/stdout)
// with every path confined to inbox. maxUpload bounds the size of any one
// file written (bytes; <=0 means DefaultMaxUpload). It returns when the
// client ends the session; io.EOF from a clean end is not an error.
//
// A session that ends with files still open (an interrupted upload) returns
// an error wrapping io.ErrUnexpectedEOF; the partial file stays in the inbox
// so the upload can be resumed. ServeSFTP closes rw before it returns.
//
// The client sees the inbox as "/", shaped for blob uploads only (see
// shape): it may create the blobs directory, write blobs/sha256-HEX and
// blobs/sha256-HEX.part (at any offset, up to maxUpload), read, stat and
// remove them, rename a .part to its whole name, and list. It may not set
// modes, owners, sizes or times, make directories or files of any other
// name, create or read links, or reach anything outside through "..",
// absolute paths or symlinks, even ones planted by someone else.
func ServeSFTP(rw io.ReadWriteCloser, inbox string, maxUpload int64) error {
	defer rw.Close()
	if maxUpload <= 0 {
		maxUpload = DefaultMaxUpload
	}
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		return fmt.Errorf("sftp: create inbox: %w", err)
	}
	root, err := os.OpenRoot(inbox)
	if err != nil {
		return fmt.Errorf("sftp: open inbox: %w", err)
	}
	defer root.Close()

	in := newInbox(root, maxUpload)
	h := sftp.Handlers{FileGet: in, FilePut: in, FileCmd: in, FileList: in}
	// Serve closes every handle the client left open before it returns.
	err = sftp.NewRequestServer(rw, h, sftp.WithRSAllocator()).Serve()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sftp session: %w", err)
	}
	return nil
}

// inbox implements pkg/sftp's request handlers on an os.Root, which refuses
// every path (lexical or through a symlink) that leaves the directory.
type inbox struct {
	root *os.Root
	max  int64
	// escapes is the error os.Root wraps when a path leaves the root. It is
	// unexported by package os, so newInbox learns it by asking for "..".
	escapes error
}

func newInbox(root *os.Root, maxUpload int64) *inbox {
	in := &inbox{root: root, max: maxUpload}
	var pe *fs.PathError
	if _, err := root.Lstat(".."); errors.As(err, &pe) {
		in.escapes = pe.Err
	}
	return in
}

// inboxPath maps a client's path to a name relative to the inbox root:
// "/" and "" are ".", "/a/../b" is "b", "../../etc/shadow" is "etc/shadow".
// The result never starts with "/" and has no ".." element; os.Root still
// does the confinement, since a symlink inside may point anywhere.
func inboxPath(p string) string {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// errRefused marks what the inbox never allows (links, chown, readlink).
var errRefused = errors.New("not allowed in the upload inbox")

// wire gives err the SFTP status code the client should see, keeping its
// message. pkg/sftp only recognises unwrapped os errors by itself.
func (in *inbox) wire(err error) error {
	code := sftp.ErrSSHFxOk
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.As(err, &code):
		return err
	case errors.Is(err, fs.ErrNotExist):
		code = sftp.ErrSSHFxNoSuchFile
	case errors.Is(err, errRefused), errors.Is(err, fs.ErrPermission),
		in.escapes != nil && errors.Is(err, in.escapes):
		code = sftp.ErrSSHFxPermissionDenied
	case errors.Is(err, errors.ErrUnsupported):
		code = sftp.ErrSSHFxOpUnsupported
	default:
		code = sftp.ErrSSHFxFailure
	}
	return &statusError{err: err, code: code}
}

// statusError is err as the client sees it: its message, with code as the
// SFTP status (pkg/sftp finds code with errors.As).
type statusError struct {
	err  error
	code error
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() []error { return []error{e.err, e.code} }

// The optional pkg/sftp interfaces inbox relies on: without them pkg/sftp
// falls back to behaviour that is not confined or not refused.
var (
	_ sftp.OpenFileWriter       = (*inbox)(nil)
	_ sftp.PosixRenameFileCmder = (*inbox)(nil)
	_ sftp.LstatFileLister      = (*inbox)(nil)
	_ sftp.RealPathFileLister   = (*inbox)(nil)
	_ sftp.ReadlinkFileLister   = (*inbox)(nil)
)
