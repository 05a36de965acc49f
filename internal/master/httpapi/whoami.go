package httpapi

import (
	"net/http"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/masterapi"
)

func (s *server) whoamiRoutes(handle handleFunc) {
	handle("GET /v1/whoami", s.whoami)
}

// whoami answers who the master takes the caller for, and their roles:
// what authorisation decides on, so a refusal can be understood.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	c, _ := access.CallerFrom(r.Context())
	out := masterapi.WhoAmI{User: c.User, Credential: c.Credential, Local: c.Local, Tenant: c.Tenant, Roles: []masterapi.RoleBinding{}}
	if !c.Local {
		bindings, err := s.cp.Bindings(r.Context(), c.User)
		if err != nil {
			return err
		}
		for _, b := range bindings {
			out.Roles = append(out.Roles, masterapi.RoleBinding{Tenant: b.Tenant, Role: string(b.Role)})
		}
	}
	return reply(w, out, nil)
}
