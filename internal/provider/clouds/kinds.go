package clouds

import "github.com/moatcloud/moat/internal/provider"

func openLocal(dir, moat string) (provider.Provider, error) { return nil, notBuilt("local") }

func openDigitalOcean(token, endpoint string) (provider.Provider, error) {
	return nil, notBuilt("digitalocean")
}

func openHetzner(token, endpoint string) (provider.Provider, error) { return nil, notBuilt("hetzner") }
