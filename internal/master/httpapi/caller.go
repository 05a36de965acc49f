package httpapi

import (
	"net/http"

	"github.com/moatcloud/moat/internal/access"
)

// localCaller is the caller on the master's own unix socket, which only
// root can open (wire.ListenUnix): root, who may do everything. Nothing a
// request says (headers, body) changes who it is.
func localCaller(*http.Request) (access.Caller, error) { return access.Root, nil }

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
