package master

import (
	"context"
	"slices"

	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/spec"
)

// Certificates of ingress routes held as secrets (tls: {secret: NAME}):
// the master looks up the envelope of the version each app's current
// revision pinned, before planning, and planLinks puts it on the app's
// routes for that host. The master never holds more than the envelope.

// certKey names a route's certificate in what ingressCerts returns.
func certKey(app, secret string) string { return app + "/" + secret }

// ingressCerts is the envelope of every secret an app's current spec
// serves as a route's certificate, by certKey. A secret whose pinned
// version cannot be read is left out (its routes are not served: never in
// plain HTTP) and logged once per error.
func (m *Master) ingressCerts(ctx context.Context, w *world) map[string]nodeapi.IngressCert {
	c := &m.certs
	if gen := m.secretsChanged.Load(); c.read == nil || c.gen != gen {
		c.read, c.gen = map[string]certRead{}, gen // read again: the secrets changed
	}
	out := map[string]nodeapi.IngressCert{}
	failed := map[string]string{}
	for _, a := range w.apps {
		tenant, name := store.SplitAppKey(a.Name)
		for _, in := range a.spec.Ingress {
			k := certKey(a.Name, in.TLSSecret)
			if in.TLS != spec.TLSFromSecret || out[k].Envelope != nil || failed[k] != "" {
				continue
			}
			version := 0
			if i := slices.IndexFunc(a.spec.Secrets, func(s spec.Secret) bool { return s.Name == in.TLSSecret }); i >= 0 {
				version = a.spec.Secrets[i].Version
			}
			if version == 0 {
				failed[k] = "the revision pins no version of the secret"
				continue
			}
			r, ok := c.read[k]
			if !ok || r.version != version {
				row, err := m.db.GetSecret(ctx, tenant, name, in.TLSSecret, version)
				if err != nil {
					failed[k] = err.Error() // read again next pass
					continue
				}
				r = certRead{version: version, cert: nodeapi.IngressCert{Secret: in.TLSSecret, Version: row.Version, Envelope: row.Envelope}}
				c.read[k] = r
			}
			out[k] = r.cert
		}
	}
	for k, why := range failed {
		if c.failed[k] != why {
			m.log.Error("ingress certificate not found: its routes are not served", "cert", k, "err", why)
		}
	}
	c.failed = failed
	return out
}

// certCache is what ingressCerts read of the database, so that a pass
// (every second) reads only what changed: envelopes read, by certKey, good while
// no secret was written (gen) and the version pinned is the same; and the
// failures last logged.
type certCache struct {
	gen    int64
	read   map[string]certRead
	failed map[string]string
}

type certRead struct {
	version int
	cert    nodeapi.IngressCert
}
