package nodeapi

import "github.com/moatcloud/moat/internal/errs"

// IngressCert is a route's certificate held as one of its app's secrets:
// the envelope of the version the app's current revision pinned, whose
// value is the PEM certificate chain followed by the PEM private key. The
// master cannot open it; the edge node opens it, checks that it is bound
// to the route's app and to Secret, and keeps the key in memory only.
type IngressCert struct {
	Secret   string `json:"secret"`
	Version  int    `json:"version"` // as the master says; the envelope's own is what counts
	Envelope []byte `json:"envelope"`
}

func (c *IngressCert) validate(at string, acme bool) error {
	switch {
	case c == nil:
		return nil
	case acme:
		return errs.Invalid(at, "a route's certificate comes from ACME or from a secret, not both")
	case !secretNameRE().MatchString(c.Secret):
		return errs.Invalid(at+".secret", "%q is not a secret name", c.Secret)
	case len(c.Envelope) == 0 || len(c.Envelope) > MaxEnvelopeBytes:
		return errs.Invalid(at+".envelope", "%d bytes: want 1 to %d", len(c.Envelope), MaxEnvelopeBytes)
	}
	return nil
}
