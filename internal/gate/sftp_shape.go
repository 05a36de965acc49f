package gate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// The inbox has one shape (nodeapi.Layout's): the master uploads image
// blobs into it and nothing else. Every operation names the kinds of path it accepts, and
// anything else is refused before the file system is touched:
//
//	.                        the inbox (list, stat)
//	blobs                    its one directory (mkdir, list, stat)
//	blobs/sha256-HEX         a whole blob (read, write, stat, remove)
//	blobs/sha256-HEX.part    a blob being uploaded (the same, and rename
//	                         to its whole name when complete)
type kind int

const (
	kindOther kind = iota
	kindRoot
	kindDir
	kindBlob
	kindPart
)

const blobDir = nodeapi.InboxBlobDir

// shape tells what a name (as inboxPath leaves it) is in the inbox. Pure.
func shape(name string) kind {
	switch name {
	case ".":
		return kindRoot
	case blobDir:
		return kindDir
	}
	base, ok := strings.CutPrefix(name, blobDir+"/"+nodeapi.InboxBlobPrefix)
	if !ok {
		return kindOther
	}
	k := kindBlob
	if b, part := strings.CutSuffix(base, nodeapi.PartSuffix); part {
		base, k = b, kindPart
	}
	if len(base) != 64 || strings.Trim(base, "0123456789abcdef") != "" {
		return kindOther
	}
	return k
}

// allow refuses op on name unless name is one of kinds.
func allow(op, name string, kinds ...kind) error {
	if slices.Contains(kinds, shape(name)) {
		return nil
	}
	return fmt.Errorf("%s %q: the upload inbox holds only blobs/sha256-HEX and blobs/sha256-HEX.part: %w", op, name, errRefused)
}

// allowRename accepts only a finished upload taking its whole name:
// blobs/sha256-HEX.part to blobs/sha256-HEX.
func allowRename(oldname, newname string) error {
	if shape(oldname) == kindPart && newname+nodeapi.PartSuffix == oldname {
		return nil
	}
	return fmt.Errorf("rename %q to %q: only blobs/sha256-HEX.part to blobs/sha256-HEX: %w", oldname, newname, errRefused)
}
