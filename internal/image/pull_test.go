package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
)

// TestTakeLoose: an uploaded blob is verified where it lies and moved into
// the store; whatever else sits under its name in the inbox is refused or
// copied, and never followed out of the inbox.
func TestTakeLoose(t *testing.T) {
	content := []byte("a blob's content")
	d := digest.FromBytes(content)
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, content, 0o600)

	tests := []struct {
		name    string
		plant   func(path string)
		sizeOff int64  // the descriptor's size, off by this much
		wantErr string // "" when the blob must end up stored
		moved   bool   // the stored blob is the uploaded file itself
	}{
		{"verified and moved", func(p string) { os.WriteFile(p, content, 0o644) }, 0, "", true},
		{"content lies", func(p string) { os.WriteFile(p, []byte("something else"), 0o600) }, 0, "content hashes to", false},
		{"size lies", func(p string) { os.WriteFile(p, content, 0o600) }, 1, "descriptor says", false},
		{"symlink out of the inbox", func(p string) { os.Symlink(outside, p) }, 0, "uploaded blob", false},
		{"hard link to a file that stays writable", func(p string) { os.Link(outside, p) }, 0, "", false},
		{"missing", func(string) {}, 0, "neither stored nor uploaded", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			inbox := t.TempDir()
			path := filepath.Join(inbox, InboxName(d))
			tt.plant(path)
			before, _ := os.Lstat(path)
			err := s.takeLoose(d, int64(len(content))+tt.sizeOff, inbox)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				if s.HasBlob(d) {
					t.Error("a refused upload is in the store")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.ReadBlob(d)
				if err != nil || string(got) != string(content) {
					t.Fatalf("stored blob: %q, %v", got, err)
				}
				stored, _ := os.Lstat(s.BlobPath(d))
				if tt.moved != os.SameFile(before, stored) {
					t.Errorf("stored blob is the uploaded file: %v, want %v", !tt.moved, tt.moved)
				}
				if st := stored.Sys().(*syscall.Stat_t); st.Nlink != 1 || stored.Mode().Perm() != 0o600 {
					t.Errorf("stored blob: %d links, mode %v", st.Nlink, stored.Mode())
				}
			}
			if _, err := os.Lstat(path); err == nil {
				t.Error("the upload is still in the inbox")
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != string(content) {
				t.Errorf("the file outside the inbox changed: %q %v", b, err)
			}
		})
	}
}
