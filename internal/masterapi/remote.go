package masterapi

import (
	"net/http"

	"github.com/moatcloud/moat/internal/wire"
)

// NewClient reaches the master through h, whose transport decides how (a
// unix socket, ssh sessions); what names the master in errors.
func NewClient(h *http.Client, what string) *Client {
	return &Client{wire.Client{HTTP: h, Base: "http://master", What: what}}
}
