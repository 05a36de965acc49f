package nodeapi

import (
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	d := "sha256:" + hex
	l := Layout{Root: "/var/lib/moat"}
	for _, tc := range []struct{ got, want string }{
		{l.Inbox(), "/var/lib/moat/inbox"},
		{l.InboxBlobs(), "/var/lib/moat/inbox/blobs"},
		{l.InboxBlob(d), "/var/lib/moat/inbox/blobs/sha256-" + hex},
		{InboxBlobName(d), "sha256-" + hex},
		{InboxBlobPath(d), "blobs/sha256-" + hex},
		{l.Images(), "/var/lib/moat/images"},
		{l.Containers(), "/var/lib/moat/containers"},
		{l.Container("web-1"), "/var/lib/moat/containers/web-1"},
		{l.Runc(), "/var/lib/moat/runc"},
		{l.Volumes(), "/var/lib/moat/volumes"},
		{l.Keep(), "/var/lib/moat/keep.json"},
		{l.Lease(), "/var/lib/moat/lease.json"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// The inbox as its SFTP server shows it is the same place.
	if got := l.Inbox() + "/" + InboxBlobPath(d); got != l.InboxBlob(d) {
		t.Errorf("inbox + InboxBlobPath = %q, want %q", got, l.InboxBlob(d))
	}
}
