package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/ssh"

	"github.com/moatcloud/moat/internal/errs"
)

// Policy is who may sign images a node runs.
type Policy struct {
	Signers []AllowedSigner
	Revoked []ssh.PublicKey
}

// LoadPolicy reads the allowed signers file and, if it exists, the revoked
// signers file. A missing allowed signers file is an error: a node that
// requires signatures and trusts no one runs nothing, and should say why.
func LoadPolicy(allowedPath, revokedPath string) (Policy, error) {
	var p Policy
	b, err := os.ReadFile(allowedPath)
	if err != nil {
		return p, fmt.Errorf("allowed signers: %w", err)
	}
	if p.Signers, err = ParseAllowedSigners(b); err != nil {
		return p, fmt.Errorf("%s: %w", allowedPath, err)
	}
	if revokedPath != "" {
		b, err := os.ReadFile(revokedPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return p, fmt.Errorf("revoked signers: %w", err)
		default:
			if p.Revoked, err = ParseRevoked(b); err != nil {
				return p, fmt.Errorf("%s: %w", revokedPath, err)
			}
		}
	}
	return p, nil
}

// Verify returns the principal of the first signature that holds for the
// image under the policy at time now. When none does, the error says, per
// signature, why not.
func (p Policy) Verify(manifest digest.Digest, sigs [][]byte, now time.Time) (string, error) {
	if len(sigs) == 0 {
		return "", fmt.Errorf("image %s is not signed, and this node runs only signed images: sign it with moat image sign: %w", manifest, errs.ErrForbidden)
	}
	var why []string
	for i, armored := range sigs {
		principal, err := p.verifyOne(manifest, armored, now)
		if err == nil {
			return principal, nil
		}
		why = append(why, fmt.Sprintf("signature %d: %v", i+1, err))
	}
	return "", fmt.Errorf("image %s has no signature this node accepts: %s: %w", manifest, strings.Join(why, "; "), errs.ErrForbidden)
}

func (p Policy) verifyOne(manifest digest.Digest, armored []byte, now time.Time) (string, error) {
	sig, err := Parse(armored)
	if err != nil {
		return "", err
	}
	fp := Fingerprint(sig.PublicKey)
	for _, r := range p.Revoked {
		if Fingerprint(r) == fp {
			return "", fmt.Errorf("signed by %s, which is revoked", fp)
		}
	}
	var found bool
	var why error
	for _, s := range p.Signers {
		if s.CertAuthority || Fingerprint(s.Key) != fp {
			continue
		}
		found = true
		name := strings.Join(s.Principals, ",")
		switch {
		case !s.allows(Namespace):
			why = fmt.Errorf("signer %s (%s, allowed signers line %d) may not sign in namespace %s", name, fp, s.Line, Namespace)
			continue
		case !s.ValidAfter.IsZero() && now.Before(s.ValidAfter):
			why = fmt.Errorf("signer %s (%s) is valid only from %s", name, fp, s.ValidAfter.Format(time.RFC3339))
			continue
		case !s.ValidBefore.IsZero() && !now.Before(s.ValidBefore):
			why = fmt.Errorf("signer %s (%s) expired on %s", name, fp, s.ValidBefore.Format(time.RFC3339))
			continue
		}
		if err := verify(sig, s.Key, manifest); err != nil {
			return "", err
		}
		return s.Principals[0], nil
	}
	if !found {
		return "", fmt.Errorf("signed by %s, which is not in the allowed signers", fp)
	}
	return "", why
}
