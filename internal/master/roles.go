package master

import (
	"context"
	"slices"

	"github.com/moatcloud/moat/internal/access"
)

// Bindings are a user's roles, which the API's authorisation decides on
// (none for a user the master does not know), from the users' index
// (users.go).
func (m *Master) Bindings(ctx context.Context, user string) ([]access.Binding, error) {
	m.ids.mu.RLock()
	defer m.ids.mu.RUnlock()
	return slices.Clone(m.ids.roles[user]), nil
}
