package clouds

import (
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/hetzner"
	"github.com/moatcloud/moat/internal/provider/local"
)

func openLocal(dir, moat string) (provider.Provider, error) { return local.OpenCloud(dir, moat) }

func openDigitalOcean(token, endpoint string) (provider.Provider, error) {
	return digitalocean.New(token, endpoint)
}

func openHetzner(token, endpoint string) (provider.Provider, error) {
	return hetzner.New(token, endpoint)
}
