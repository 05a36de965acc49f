package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// The edges' shared certificate cache (see internal/edge, replica_cache.go):
// each edge keeps an outbox of its cache's changes, which the master pulls
// (GET /v1/edge/cache/outbox, a long poll whose acked says what the master
// delivered) and installs in the other edges whose key has the same ID
// (PUT /v1/edge/cache). Entries are sealed with a key the master never
// holds, bound to their name's hash: it carries them, it cannot read or
// forge them.

// EdgeCacheKey is where an edge keeps its cache's key (32 bytes, 0600):
// the cluster's, installed by moat node add --edge, or one of its own
// made on first start.
const EdgeCacheKey = StateDir + "/edge/acme.key"

// Limits on what an install may carry.
const (
	MaxEdgeCacheEntry   = 256 << 10 // a request body is at most MaxRequestBytes: the master batches by size
	MaxEdgeCacheEntries = 1000
	// MaxEdgeCacheWait bounds an outbox long poll.
	MaxEdgeCacheWait = time.Minute
)

// EdgeCacheEntry is one entry of an edge's certificate cache, sealed.
type EdgeCacheEntry struct {
	// Seq orders an edge's own changes (the outbox); 0 elsewhere.
	Seq uint64 `json:"seq,omitempty"`
	// Hash is the hex SHA-256 of the entry's name.
	Hash string `json:"hash"`
	// Data is the sealed entry, or its sealed deletion: the master can
	// no more delete an entry than forge one.
	Data []byte `json:"data"`
	// Challenge: an ACME challenge, which every edge must have before the
	// CA looks (the edge waits for the outbox's acknowledgment).
	Challenge bool `json:"challenge,omitempty"`
	// Claim: an edge's claim to order a name's certificate, also waited
	// for; the master keeps the first fresh claim of a name and answers a
	// later one by installing the first in the claiming edge. A claim is
	// installed even over the edge's own not yet acknowledged.
	Claim bool `json:"claim,omitempty"`
}

// EdgeCacheOutbox is what GET /v1/edge/cache/outbox answers: the ID of
// the edge's cache key (edges with the same ID share the key) and its
// changes not yet acknowledged, oldest first.
type EdgeCacheOutbox struct {
	KeyID string `json:"key_id"`
	// Epoch names the outbox (made anew when the daemon starts): an ack
	// counts only with the epoch it was pulled from.
	Epoch   string           `json:"epoch"`
	Entries []EdgeCacheEntry `json:"entries,omitempty"`
}

// EdgeCacheInstall is the body of PUT /v1/edge/cache: entries other
// edges made, for an edge whose key has ID KeyID (another is refused).
type EdgeCacheInstall struct {
	KeyID   string           `json:"key_id"`
	Entries []EdgeCacheEntry `json:"entries"`
}

// EdgeCacheInstalled says what an install did: entries kept, entries
// skipped (the edge's own newer change is on its way), entries refused
// (they did not open with the edge's key for their hash: forged, or moved
// to another name).
type EdgeCacheInstalled struct {
	Installed int `json:"installed"`
	Skipped   int `json:"skipped"`
	Refused   int `json:"refused"`
}

// EdgeCacheKeyIDLen is the length of a cache key's ID: 8 bytes of a hash
// of the key, in hex (internal/edge).
const EdgeCacheKeyIDLen = 16

// inField names err's field within prefix.
func inField(prefix string, err error) error {
	var fe *errs.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	if fe.Field != "" {
		prefix += "." + fe.Field
	}
	return errs.Invalid(prefix, "%s", fe.Msg)
}

// lowerHex says whether s is n lower-case hex digits.
func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Validate checks an install's shape; whether its entries open is the
// edge's to check.
func (in *EdgeCacheInstall) Validate() error {
	if in.KeyID == "" {
		return errs.Invalid("key_id", "required")
	}
	if !lowerHex(in.KeyID, EdgeCacheKeyIDLen) {
		return errs.Invalid("key_id", "%.80q: want %d lower-case hex digits", in.KeyID, EdgeCacheKeyIDLen)
	}
	if len(in.Entries) > MaxEdgeCacheEntries {
		return errs.Invalid("entries", "%d entries: at most %d at once", len(in.Entries), MaxEdgeCacheEntries)
	}
	for i, e := range in.Entries {
		if e.Seq != 0 {
			return errs.Invalid(fmt.Sprintf("entries[%d].seq", i), "only an outbox's entries have one")
		}
		if err := e.Validate(); err != nil {
			return inField(fmt.Sprintf("entries[%d]", i), err)
		}
	}
	return nil
}

// Validate checks one entry's shape, as an edge hands it to the master
// (which keeps and carries only entries that pass) or the master to an
// edge: field names are relative to the entry.
func (e *EdgeCacheEntry) Validate() error {
	if !lowerHex(e.Hash, 64) {
		return errs.Invalid("hash", "%.80q: want a SHA-256 in 64 lower-case hex digits", e.Hash)
	}
	if e.Challenge && e.Claim {
		return errs.Invalid("", "a challenge or a claim, not both")
	}
	if len(e.Data) == 0 {
		return errs.Invalid("data", "required: a sealed entry or a sealed deletion")
	}
	if len(e.Data) > MaxEdgeCacheEntry {
		return errs.Invalid("data", "%d bytes: at most %d", len(e.Data), MaxEdgeCacheEntry)
	}
	return nil
}

// EdgeCacheOutbox pulls the edge's cache changes, having told it those
// of outbox epoch up to acked reached every other edge; it waits up to
// wait for one if there are none.
func (c *Client) EdgeCacheOutbox(ctx context.Context, epoch string, acked uint64, wait time.Duration) (EdgeCacheOutbox, error) {
	var out EdgeCacheOutbox
	q := url.Values{"epoch": {epoch}, "acked": {strconv.FormatUint(acked, 10)}, "wait": {wait.String()}}
	return out, c.Call(ctx, http.MethodGet, "/v1/edge/cache/outbox?"+q.Encode(), nil, &out)
}

// InstallEdgeCache hands the edge entries other edges made.
func (c *Client) InstallEdgeCache(ctx context.Context, in EdgeCacheInstall) (EdgeCacheInstalled, error) {
	var out EdgeCacheInstalled
	return out, c.Call(ctx, http.MethodPut, "/v1/edge/cache", in, &out)
}
