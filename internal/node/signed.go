package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sign"
)

// Where enrolment puts the operator's signing policy.
const (
	DefaultAllowedSigners = nodeapi.AllowedSigners
	DefaultRevokedSigners = nodeapi.RevokedSigners
)

// policy reads the signing policy afresh: the operator edits the files
// over SSH and expects the next check to follow them.
func (d *Daemon) policy() (sign.Policy, error) {
	p, err := sign.LoadPolicy(d.cfg.AllowedSigners, d.cfg.RevokedSigners)
	if err != nil {
		return p, fmt.Errorf("this node runs only signed images, but its signing policy cannot be read: %v: %w", err, errs.ErrForbidden)
	}
	return p, nil
}

// checkSigned refuses an image no allowed key signed, when the node
// requires signatures. extra are signatures not yet stored.
func (d *Daemon) checkSigned(m digest.Digest, extra [][]byte) error {
	if !d.cfg.RequireSigned {
		return nil
	}
	p, err := d.policy()
	if err != nil {
		return err
	}
	stored, err := d.images.Signatures(m)
	if err != nil {
		return err
	}
	who, err := p.Verify(m, append(extra, stored...), time.Now())
	if err != nil {
		return err
	}
	d.log.Debug("image signature accepted", "digest", m, "signer", who)
	return nil
}

// signerNames lists the allowed signers for node info: principals and
// fingerprints, never anything secret.
func (d *Daemon) signerNames() []string {
	p, err := sign.LoadPolicy(d.cfg.AllowedSigners, "")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range p.Signers {
		if !s.CertAuthority {
			out = append(out, strings.Join(s.Principals, ",")+" "+sign.Fingerprint(s.Key))
		}
	}
	return out
}

// discardUploads removes what was uploaded to the inbox for an image that
// will not be pulled: its manifest and the blobs it lists.
func discardUploads(inbox string, m digest.Digest) {
	path := filepath.Join(inbox, image.InboxName(m))
	if b, err := os.ReadFile(path); err == nil && len(b) < 4<<20 {
		for _, d := range image.ManifestBlobs(b) {
			os.Remove(filepath.Join(inbox, image.InboxName(d)))
		}
	}
	os.Remove(path)
}
