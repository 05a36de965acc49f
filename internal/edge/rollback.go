package edge

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The master keeps every sealed entry it carried, so it could hand an
// edge an older one of a name in place of the newest: an expired
// certificate would be a deletion in all but name (the edge orders
// again, spending the CA's rate limits), an older one a downgrade. The
// seal cannot tell old from new, the certificate can: its NotBefore is
// set by the CA when it issues it (by the edge for a TLS-ALPN-01 token),
// on no clock the master controls. So an edge keeps another's
// certificate only if it has not expired and is not older than the one
// it holds. Other entries (the account key, HTTP-01 tokens, claims) carry
// no such date: an old one of those is no worse than one withheld.

// certLeaf is the leaf of a cache entry holding a private key and its
// certificate chain as autocert writes them, or nil for any other entry.
func certLeaf(plain []byte) *x509.Certificate {
	priv, rest := pem.Decode(plain)
	if priv == nil || !strings.Contains(priv.Type, "PRIVATE") {
		return nil
	}
	b, _ := pem.Decode(rest)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return leaf
}

// notOlder refuses a certificate entry for hash that has expired, or
// was issued before the one this cache holds for it.
func (c *Cache) notOlder(hash string, plain []byte, now time.Time) error {
	leaf := certLeaf(plain)
	if leaf == nil {
		return nil
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("an expired certificate (not after %s)", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	held, err := os.ReadFile(c.hashPath(hash))
	if err != nil {
		return nil // none held (or unreadable: the new one replaces it)
	}
	heldPlain, err := c.open(held, "", hash)
	if err != nil {
		return nil // format 1, or damaged: nothing to compare with
	}
	if old := certLeaf(heldPlain); old != nil && leaf.NotBefore.Before(old.NotBefore) {
		return fmt.Errorf("a certificate issued %s, older than the one held (issued %s)",
			leaf.NotBefore.UTC().Format(time.RFC3339), old.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// isClaim says whether an opened entry is a claim to order (claim.go):
// the master marks which entries are claims, and a claim is installed
// even over the edge's own change not yet acknowledged, so the mark alone
// must not let it overwrite anything else that way.
func isClaim(plain []byte) error {
	var cl claim
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cl); err != nil {
		return fmt.Errorf("marked a claim, but is not one: %w", err)
	}
	if cl.By == "" || cl.At.IsZero() {
		return errors.New("marked a claim, but names no edge or time")
	}
	return nil
}
