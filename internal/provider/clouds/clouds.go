// Package clouds opens a pool's provider by kind: the one place that
// knows every cloud moat speaks to (provider/local, provider/digitalocean,
// provider/hetzner), so the master's pool manager and moat pool image open
// them the same way.
package clouds

import (
	"net/url"
	"path/filepath"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/provider"
)

// Kinds are the providers Open knows, in the order docs list them.
var Kinds = []string{"local", "digitalocean", "hetzner"}

// Open opens a provider: token is its API token (none for local);
// endpoint, when set, replaces the provider's API base URL (tests point
// it at a fake on 127.0.0.1); localDir is the local provider's state
// directory and moatBinary the moat its machines run.
func Open(kind, token, endpoint, localDir, moatBinary string) (provider.Provider, error) {
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errs.Invalid("endpoint", "%q: want an http(s) URL", endpoint)
		}
	}
	switch kind {
	case "local":
		if localDir == "" || !filepath.IsAbs(localDir) {
			return nil, errs.Invalid("local-dir", "%q: a local provider needs an absolute state directory", localDir)
		}
		if moatBinary == "" {
			return nil, errs.Invalid("moat", "a local provider needs the moat binary its machines run")
		}
		return openLocal(localDir, moatBinary)
	case "digitalocean":
		return openDigitalOcean(token, endpoint)
	case "hetzner":
		return openHetzner(token, endpoint)
	case "static":
		return nil, errs.Invalid("provider", "a static pool has no provider: its nodes are added with moat node add")
	}
	return nil, errs.Invalid("provider", "%q: want one of local, digitalocean, hetzner", kind)
}
