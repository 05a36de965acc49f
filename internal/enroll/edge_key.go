package enroll

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// EdgeCacheKeyPath is where an edge keeps the key its certificate cache
// is sealed with (package edge): root's, 0600.
const EdgeCacheKeyPath = nodeapi.EdgeCacheKey

// installEdgeKey installs the cluster's edge cache key on an edge, over
// the operator's own connection, as the secrets key is: the master never
// holds it, so it carries the edges' cache entries without being able to
// read or forge them. It says whether it changed the node's key, and
// whether it replaced another (the node's own, made on its first start,
// or another cluster's): what that key sealed no longer opens, and the
// edge orders those certificates again.
func installEdgeKey(ctx context.Context, r *remote, key []byte) (changed, replaced bool, err error) {
	if len(key) == 0 {
		return false, false, nil
	}
	if len(key) != 32 {
		return false, false, fmt.Errorf("the edge cache key: %d bytes, want 32", len(key))
	}
	out, err := r.run(ctx, nil, "base64 -w0 "+EdgeCacheKeyPath+" 2>/dev/null || true")
	if err != nil {
		return false, false, err
	}
	current, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if bytes.Equal(current, key) {
		return false, false, nil
	}
	if err := r.writeFile(ctx, EdgeCacheKeyPath, 0o600, key); err != nil {
		return false, false, fmt.Errorf("install the edge cache key: %w", err)
	}
	return true, len(current) > 0, nil
}
