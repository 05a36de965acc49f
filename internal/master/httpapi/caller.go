package httpapi

import (
	"net/http"

	"github.com/moatcloud/moat/internal/access"
)

// localCaller is the caller on the master's own unix socket, which only
// root can open (wire.ListenUnix): root, who may do everything. Nothing a
// request says (headers, body) changes who it is; its Moat-Tenant header
// says which tenant it acts in (requestTenant).
func localCaller(r *http.Request) (access.Caller, error) {
	c := access.Root
	t, err := requestTenant(r)
	c.Tenant = t
	return c, err
}

// withCaller puts the request's caller into its context.
func (s *server) withCaller(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.callerOf(r)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(access.WithCaller(r.Context(), c)))
	}
}
