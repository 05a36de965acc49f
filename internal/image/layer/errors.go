package layer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/moatcloud/moat/internal/errs"
)

// refusal is an entry the layer may not contain. It is an errs.ErrInvalid:
// the layer is bad, not the machine.
type refusal struct {
	entry  string // the name as it appears in the tar
	reason string
	cause  error // what the system said, if anything
}

func refuse(entry, format string, args ...any) error {
	return &refusal{entry: entry, reason: fmt.Sprintf(format, args...)}
}

func (e *refusal) Error() string {
	msg := fmt.Sprintf("layer entry %q: %s", e.entry, e.reason)
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	return msg
}

func (e *refusal) Unwrap() []error {
	if e.cause == nil {
		return []error{errs.ErrInvalid}
	}
	return []error{errs.ErrInvalid, e.cause}
}

// entryError is a failure while writing an entry: its name, what was being
// done, and why.
type entryError struct {
	entry, op string
	err       error
}

func entryErr(entry, op string, err error) error {
	return &entryError{entry: entry, op: op, err: err}
}

func (e *entryError) Error() string {
	return fmt.Sprintf("layer entry %q: %s: %v", e.entry, e.op, e.err)
}

func (e *entryError) Unwrap() error { return e.err }

// explain turns os.Root's refusal to follow a symlink out of the layer into
// a refusal of the entry; escape is the error os.Root uses for that.
func explain(err, escape error) error {
	var ee *entryError
	if escape == nil || !errors.As(err, &ee) || !errors.Is(ee.err, escape) {
		return err
	}
	return &refusal{entry: ee.entry, reason: "path leaves the layer through a symlink", cause: ee.err}
}

// escapeErr returns the error os.Root gives for a path that leaves it,
// which package os does not export. Root refuses an absolute name with it
// before making any system call.
func escapeErr(root *os.Root) error {
	_, err := root.Lstat("/")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return nil
}
