package secret

import (
	"bytes"
	"fmt"
	"strings"

	"filippo.io/age"
)

// Keys is a secrets key file: age X25519 identities, one a line
// ("AGE-SECRET-KEY-1..."), '#' comments. The first seals; every one
// opens, so during a rotation the previous key still opens what was
// sealed to it. The operator keeps one in their config directory; every
// node has the same in /etc/moat/secrets.key, root's, 0600.
type Keys []*age.X25519Identity

// GenerateKeys makes a file of one new identity.
func GenerateKeys() (Keys, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return Keys{id}, nil
}

// ParseKeys reads a key file's text.
func ParseKeys(text []byte) (Keys, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	var out Keys
	for i, id := range ids {
		x, ok := id.(*age.X25519Identity)
		if !ok {
			return nil, fmt.Errorf("secrets key file: identity %d is not an age X25519 key (AGE-SECRET-KEY-1...)", i+1)
		}
		out = append(out, x)
	}
	return out, nil
}

// Sealing is the identity new envelopes are sealed with.
func (k Keys) Sealing() *age.X25519Identity { return k[0] }

// Recipient is the public half envelopes are sealed to.
func (k Keys) Recipient() string { return k[0].Recipient().String() }

// Marshal is the file's text: each identity with its public key above it.
func (k Keys) Marshal() []byte {
	var b strings.Builder
	b.WriteString("# moat secrets key: keep it private (0600). The first key seals; all open.\n")
	for _, id := range k {
		fmt.Fprintf(&b, "# public key: %s\n%s\n", id.Recipient(), id)
	}
	return []byte(b.String())
}

// Rotated is the file after a rotation to next: next seals, k's sealing
// key still opens; older keys are dropped.
func (k Keys) Rotated(next *age.X25519Identity) Keys {
	return Keys{next, k[0]}
}
