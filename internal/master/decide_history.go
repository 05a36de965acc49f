package master

import (
	"fmt"

	"github.com/moatcloud/moat/internal/master/store"
)

// The decisions over an app's history of revisions: which images its
// rollback window keeps, and which revision a rollback goes back to.
// Pure; images.go and deploy.go apply them.

// imageRef is an image kept, and why (a revision, and its role).
type imageRef struct{ Image, Why string }

// rollbackWindow says which of an app's revisions (oldest first, as the
// store lists them) keep their images, newest first: the target revision
// ("current"), the stable one ("stable"), and every revision whose image
// is among the keep newest distinct images (the current and stable ones
// count among them), so that a rollback within the window finds its
// image.
func rollbackWindow(a store.App, revs []store.Revision, keep int) []imageRef {
	var out []imageRef
	seen := map[string]bool{}
	for i := len(revs) - 1; i >= 0; i-- {
		r := revs[i]
		why := fmt.Sprintf("%s@%d", a.Name, r.Revision)
		switch {
		case r.Revision == a.Revision:
			why += " (current)"
		case r.Revision == a.Stable:
			why += " (stable)"
		case len(seen) < keep || seen[r.Image]:
		default:
			continue // outside the window: its image counts for nothing
		}
		out = append(out, imageRef{r.Image, why})
		seen[r.Image] = true
	}
	return out
}

// rollbackTarget is the revision moat rollback goes back to when not told
// which: the last one deployed before the target, or 0 when there is
// none.
func rollbackTarget(revs []store.Revision, target int) int {
	to := 0
	for _, r := range revs {
		if r.Revision < target && r.Status == store.StatusDeployed {
			to = r.Revision
		}
	}
	return to
}
