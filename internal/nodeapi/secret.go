package nodeapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/moatcloud/moat/internal/errs"
)

// SecretsKey is the node's secrets key file (age identities, package
// secret): installed by the operator's own SSH at enrolment and at a
// rotation, root's, 0600, read afresh each time a secret is opened.
// Nothing the master's key reaches can read it.
const SecretsKey = "/etc/moat/secrets.key"

// SecretsDir is where a container sees its secrets, one file each.
const SecretsDir = "/run/secrets"

// SecretMount asks for one secret in a container: its envelope (age
// ciphertext, opened only on the node), the file /run/secrets/NAME, and
// Env when given. The node mounts it only into a container whose signed
// image declares the app the envelope is bound to.
type SecretMount struct {
	Name     string `json:"name"`
	Version  int    `json:"version"` // as the master says; the envelope's own is what counts
	Envelope []byte `json:"envelope"`
	Env      string `json:"env,omitempty"`
	// Signal, when set, is what the container's process gets when a new
	// version replaces the file in place (UpdateSecrets).
	Signal string `json:"signal,omitempty"`
}

// SecretsUpdate replaces secrets of a running container in place.
type SecretsUpdate struct {
	Secrets []SecretMount `json:"secrets"`
}

// MaxEnvelopeBytes bounds one envelope in a request.
const MaxEnvelopeBytes = 68 << 10

var reloadSignals = []string{"SIGHUP", "SIGUSR1", "SIGUSR2"}

func (s *ContainerSpec) validateSecrets() error {
	return validateSecrets(s.Secrets)
}

func validateSecrets(ss []SecretMount) error {
	seen := map[string]bool{}
	for i, m := range ss {
		field := fmt.Sprintf("secrets[%d]", i)
		switch {
		case !secretNameRE().MatchString(m.Name):
			return errs.Invalid(field+".name", "%q is not a secret name", m.Name)
		case seen[m.Name]:
			return errs.Invalid(field+".name", "%q twice", m.Name)
		case len(m.Envelope) == 0 || len(m.Envelope) > MaxEnvelopeBytes:
			return errs.Invalid(field+".envelope", "%d bytes: want 1 to %d", len(m.Envelope), MaxEnvelopeBytes)
		case m.Env != "" && !envKeyRE().MatchString(m.Env):
			return errs.Invalid(field+".env", "%q is not a variable name", m.Env)
		case m.Signal != "" && !slices.Contains(reloadSignals, m.Signal):
			return errs.Invalid(field+".signal", "%q: want one of %v", m.Signal, reloadSignals)
		case m.Signal != "" && m.Env != "":
			return errs.Invalid(field+".signal", "a secret in a variable cannot be replaced in place")
		}
		seen[m.Name] = true
	}
	return nil
}

var secretNameRE = lazyRE(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validate checks an update's fields.
func (u *SecretsUpdate) Validate() error {
	if len(u.Secrets) == 0 {
		return errs.Invalid("secrets", "required")
	}
	return validateSecrets(u.Secrets)
}

// UpdateSecrets replaces secrets of a container in place and signals it.
func (c *Client) UpdateSecrets(ctx context.Context, id string, u SecretsUpdate) (Container, error) {
	var out Container
	return out, c.Call(ctx, http.MethodPut, "/v1/containers/"+url.PathEscape(id)+"/secrets", u, &out)
}
