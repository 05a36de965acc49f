package masterapi

import (
	"context"
	"net/http"
)

// WhoAmI is who the master takes the caller of a request for
// (GET /v1/whoami).
type WhoAmI struct {
	User string `json:"user"`
	// Credential says how the user proved it: "local socket", a key's
	// fingerprint, a certificate's key id, serial and CA.
	Credential string `json:"credential"`
	// Local is root on the master's own socket, who may do everything.
	Local bool `json:"local,omitempty"`
	// Tenant is the tenant the request acted in.
	Tenant string `json:"tenant,omitempty"`
	// Roles are the user's roles in every tenant (none for local root,
	// who needs none).
	Roles []RoleBinding `json:"roles"`
}

// RoleBinding is a role in a tenant ("*": every tenant).
type RoleBinding struct {
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
}

// WhoAmI asks who the master takes this client for.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var out WhoAmI
	return out, c.Call(ctx, http.MethodGet, "/v1/whoami", nil, &out)
}
