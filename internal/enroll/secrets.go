package enroll

import (
	"context"
	"fmt"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
)

// SecretsKeyPath is where a node keeps the cluster's secrets key: root's,
// 0600, outside everything the master's key reaches (the node API's
// master role, the inbox, the gate).
const SecretsKeyPath = nodeapi.SecretsKey

// installSecretsKey writes the operator's secrets key file over the
// operator's own connection, as the allowed signers are, when it differs.
func installSecretsKey(ctx context.Context, r *remote, keys []byte) (bool, error) {
	if len(keys) == 0 {
		return false, nil
	}
	if _, err := secret.ParseKeys(keys); err != nil {
		return false, err
	}
	current, err := r.run(ctx, nil, "cat "+SecretsKeyPath+" 2>/dev/null || true")
	if err != nil {
		return false, err
	}
	if current == string(keys) {
		return false, nil
	}
	if err := r.writeFile(ctx, SecretsKeyPath, 0o600, keys); err != nil {
		return false, fmt.Errorf("install the secrets key: %w", err)
	}
	return true, nil
}

// unmountSecrets drops the secrets of the containers node rm leaves
// stopped from memory (each container's tmpfs, see internal/node).
const unmountSecrets = "for d in " + nodeapi.StateDir + "/containers/*/secrets; do umount -l \"$d\" 2>/dev/null; done; true"
