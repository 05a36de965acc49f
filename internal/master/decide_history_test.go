package master

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/master/store"
)

// history is an app's revisions 1, 2, ... with these images, oldest first.
func history(images ...string) []store.Revision {
	var out []store.Revision
	for i, img := range images {
		out = append(out, store.Revision{App: "web", Revision: i + 1, Image: img, Status: store.StatusSuperseded})
	}
	return out
}

func TestRollbackWindow(t *testing.T) {
	tests := []struct {
		name string
		app  store.App
		revs []store.Revision
		keep int
		want []imageRef
	}{
		{"fewer revisions than the window: all kept", store.App{Name: "web", Revision: 2, Stable: 1}, history("A", "B"), 5,
			[]imageRef{{"B", "web@2 (current)"}, {"A", "web@1 (stable)"}}},
		{"the current image counts among the window's", store.App{Name: "web", Revision: 4, Stable: 4}, history("A", "B", "C", "D"), 2,
			[]imageRef{{"D", "web@4 (current)"}, {"C", "web@3"}}},
		{"a stable revision outside the window stays", store.App{Name: "web", Revision: 6, Stable: 1}, history("A", "B", "C", "D", "E", "F"), 2,
			[]imageRef{{"F", "web@6 (current)"}, {"E", "web@5"}, {"A", "web@1 (stable)"}}},
		{"an image in the window, at an older revision too: that one is listed", store.App{Name: "web", Revision: 3, Stable: 2}, history("A", "B", "A"), 1,
			[]imageRef{{"A", "web@3 (current)"}, {"B", "web@2 (stable)"}, {"A", "web@1"}}},
		{"scales share an image: one place in the window", store.App{Name: "web", Revision: 4, Stable: 3}, history("A", "B", "B", "B"), 2,
			[]imageRef{{"B", "web@4 (current)"}, {"B", "web@3 (stable)"}, {"B", "web@2"}, {"A", "web@1"}}},
		// An image outside the window stays outside it, however many
		// older revisions ran it (C at revisions 3 and 4 here).
		{"an image outside the window, repeated, is not kept", store.App{Name: "web", Revision: 7, Stable: 6}, history("A", "B", "C", "C", "D", "E", "F"), 3,
			[]imageRef{{"F", "web@7 (current)"}, {"E", "web@6 (stable)"}, {"D", "web@5"}}},
		{"no revisions", store.App{Name: "web"}, nil, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rollbackWindow(tt.app, tt.revs, tt.keep)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("rollbackWindow (-want +got):\n%s", d)
			}
		})
	}
}

func TestRollbackTarget(t *testing.T) {
	revs := history("A", "B", "C", "D", "E")
	for i, s := range []string{store.StatusDeployed, store.StatusFailed, store.StatusDeployed, store.StatusSuperseded, store.StatusProgressing} {
		revs[i].Status = s
	}
	tests := []struct {
		name   string
		revs   []store.Revision
		target int
		want   int
	}{
		{"the last deployed before the target", revs, 5, 3},
		{"never the target itself", revs, 3, 1},
		{"none deployed before", revs, 1, 0},
		{"failed and superseded revisions are skipped", revs, 4, 3},
		{"no history", nil, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rollbackTarget(tt.revs, tt.target); got != tt.want {
				t.Errorf("rollbackTarget(%d) = %d, want %d", tt.target, got, tt.want)
			}
		})
	}
}
