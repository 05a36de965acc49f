package clouds

import (
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/hetzner"
)

func openLocal(dir, moat string) (provider.Provider, error) { return nil, notBuilt("local") }

func openDigitalOcean(token, endpoint string) (provider.Provider, error) {
	return digitalocean.New(token, endpoint)
}

func openHetzner(token, endpoint string) (provider.Provider, error) {
	return hetzner.New(token, endpoint)
}
