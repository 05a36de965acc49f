package master

import (
	"context"

	"github.com/moatcloud/moat/internal/access"
)

// Bindings are a user's roles, which the API's authorisation decides on.
// Until the users store exists, nobody but root on the local socket has
// any: every other caller is refused.
func (m *Master) Bindings(ctx context.Context, user string) ([]access.Binding, error) {
	return nil, nil
}
