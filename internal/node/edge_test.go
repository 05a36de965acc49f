package node

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// TestEdgeCacheKey: the key sealing the ACME cache is made once, 0600,
// and read back the same on the next start; a damaged one is an error,
// not a new key (which would lose every certificate).
func TestEdgeCacheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acme.key")
	k1, err := cacheKey(path)
	if err != nil || len(k1) != 32 {
		t.Fatalf("first start: %x, %v", k1, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want 0600", st.Mode(), err)
	}
	k2, err := cacheKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second start: %x, %v; want the first key", k2, err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := cacheKey(path); err == nil {
		t.Fatal("a 5-byte key was taken")
	}
}

// TestEdgeAlias: the proxy's name for an app is a valid app name of its
// own (tenants' app keys hold a '.'), stable, and distinct per link.
func TestEdgeAlias(t *testing.T) {
	name := regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	seen := map[string]string{}
	for _, id := range []string{
		nodeapi.LinkID(nodeapi.EdgeSource, "web", 8080),
		nodeapi.LinkID(nodeapi.EdgeSource, "web", 8081),
		nodeapi.LinkID(nodeapi.EdgeSource, "acme.web", 8080),
		nodeapi.LinkID(nodeapi.EdgeSource, "acme-web", 8080),
	} {
		a := edgeAlias(id)
		if !name.MatchString(a) || a != edgeAlias(id) {
			t.Errorf("alias of %s: %q", id, a)
		}
		if other, ok := seen[a]; ok {
			t.Errorf("%s and %s share the alias %s", id, other, a)
		}
		seen[a] = id
	}
}

func TestSameEndpoints(t *testing.T) {
	a := nodeapi.LinkEndpoint{Container: "web-1", Node: "n1"}
	b := nodeapi.LinkEndpoint{Container: "web-2", Node: "n2", Addr: "10.0.0.2:22"}
	c := nodeapi.LinkEndpoint{Container: "web-3", Node: "n3", Addr: "10.0.0.3:22"}
	moved := b
	moved.Addr = "10.0.0.9:22"
	for _, tc := range []struct {
		x, y map[string][]nodeapi.LinkEndpoint
		same bool
	}{
		{nil, map[string][]nodeapi.LinkEndpoint{}, true},
		{map[string][]nodeapi.LinkEndpoint{"l": {a, b}}, map[string][]nodeapi.LinkEndpoint{"l": {b, a}}, true},
		{map[string][]nodeapi.LinkEndpoint{"l": {a, b}}, map[string][]nodeapi.LinkEndpoint{"l": {a, c}}, false},
		{map[string][]nodeapi.LinkEndpoint{"l": {a, b}}, map[string][]nodeapi.LinkEndpoint{"l": {a}}, false},
		{map[string][]nodeapi.LinkEndpoint{"l": {a, b}}, map[string][]nodeapi.LinkEndpoint{"l": {a, moved}}, false},
		{map[string][]nodeapi.LinkEndpoint{"l": {a}}, map[string][]nodeapi.LinkEndpoint{"m": {a}}, false},
	} {
		if got := sameEndpoints(tc.x, tc.y); got != tc.same {
			t.Errorf("sameEndpoints(%v, %v) = %t", tc.x, tc.y, got)
		}
	}
}
