package audit

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// readOneTime reads firstboot's one-time host key marker: it exists until
// the master replaces the key (POST /v1/hostkey).
func readOneTime() (string, error) {
	b, err := os.ReadFile(nodeapi.HostKeyOnetime)
	return string(b), err
}

// oneTimeFinding judges the marker: present, the node still serves the
// host key that came in its user data, whose private half the provider
// (and whoever reads the metadata) has seen. Pure.
func oneTimeFinding(marker string, err error) *Finding {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &Finding{sevWarn, "could not read " + nodeapi.HostKeyOnetime + ": " + err.Error()}
	}
	fp := strings.TrimSpace(marker)
	if len(fp) > 80 {
		fp = fp[:80] + "…"
	}
	return &Finding{sevWarn, "sshd still serves the one-time host key " + fp + " from the server's user data (" + nodeapi.HostKeyOnetime +
		"), whose private half the provider has seen: the master replaces it when it enrols the node"}
}
