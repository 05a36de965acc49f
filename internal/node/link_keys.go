package node

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// linkPrefix starts the comment that marks a link key's line: the only
// lines of authorized_keys the daemon ever removes or changes.
var linkPrefix = nodeapi.LinkComment("")

// linkLineID is the grant a line belongs to, if it is a link key's line
// (its last field is the moat-link: comment).
func linkLineID(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", false
	}
	id, ok := strings.CutPrefix(f[len(f)-1], linkPrefix)
	return id, ok && id != ""
}

// rewriteAuthorized returns authorized_keys with exactly one line per
// grant: a link line still wanted stays where it is (replaced in place if
// it changed), a link line of a grant that is gone (or a second line of
// one) is dropped, new grants' lines are appended. Every other line is
// kept byte for byte. Pure.
func rewriteAuthorized(old []byte, grants []nodeapi.LinkGrant) []byte {
	want := map[string]string{}
	for _, g := range grants {
		want[g.ID] = nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, g)
	}
	var out bytes.Buffer
	done := map[string]bool{}
	for _, line := range strings.SplitAfter(string(old), "\n") {
		id, ok := linkLineID(line)
		if !ok {
			out.WriteString(line)
			continue
		}
		if w, wanted := want[id]; wanted && !done[id] {
			out.WriteString(w + "\n")
			done[id] = true
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		if !done[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > 0 && out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteString("\n")
	}
	for _, id := range ids {
		out.WriteString(want[id] + "\n")
	}
	return out.Bytes()
}

// syncAuthorized brings the authorized_keys file in line with the grants.
// It writes only when something changes, atomically (a temporary file
// renamed over it) with the file's own mode and owner, so sshd never reads
// half a file and StrictModes stays content.
func syncAuthorized(path string, grants []nodeapi.LinkGrant) error {
	// A symlinked authorized_keys stays a symlink: the file it names is
	// the one replaced.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	old, err := os.ReadFile(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("read %s: %w", path, err)
	}
	next := rewriteAuthorized(old, grants)
	if bytes.Equal(old, next) {
		return nil
	}
	mode, uid, gid := fs.FileMode(0o600), -1, -1
	if missing {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(s.Uid), int(s.Gid)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".authorized_keys.moat-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(next)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil && uid >= 0 {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
