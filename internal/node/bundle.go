package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moatcloud/moat/internal/runtime"
)

// writeBundle writes the OCI bundle's config.json.
func writeBundle(bundle string, cfg runtime.Config) error {
	spec, err := runtime.Spec(cfg)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600)
}

// writeEtc writes /etc/hosts and /etc/hostname for the container and
// returns the read-only bind mounts that put them in place. With the
// host's network it shares the host's resolver configuration instead.
func writeEtc(dir, hostname string, hostNetwork bool) ([]runtime.Mount, error) {
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost %[1]s\n::1\tlocalhost ip6-localhost ip6-loopback %[1]s\n", hostname)
	files := map[string]string{"hosts": hosts, "hostname": hostname + "\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	ms := []runtime.Mount{
		{Type: "bind", Source: filepath.Join(etc, "hostname"), Target: "/etc/hostname", ReadOnly: true},
	}
	if hostNetwork {
		ms = append(ms,
			runtime.Mount{Type: "bind", Source: "/etc/hosts", Target: "/etc/hosts", ReadOnly: true},
			runtime.Mount{Type: "bind", Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true})
	} else {
		ms = append(ms, runtime.Mount{Type: "bind", Source: filepath.Join(etc, "hosts"), Target: "/etc/hosts", ReadOnly: true})
	}
	return ms, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
