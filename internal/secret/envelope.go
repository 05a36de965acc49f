// Package secret is moat's secrets envelope: a value encrypted on the
// operator's machine with age (filippo.io/age) to the cluster's secrets
// key, whose private half only the operator and the nodes hold. Inside the
// encryption, the value is bound to its tenant, app, name and version and
// authenticated with a MAC keyed by that private half, so the master, which
// stores and ships envelopes, can neither read one nor make one nodes
// accept, and a node can tell which app a secret belongs to.
package secret

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"filippo.io/age"
)

// Limits on what an envelope may carry.
const (
	// A value fits one JSON request (1 MiB, base64) many times over:
	// passwords, tokens, certificates and their keys.
	MaxValue    = 64 << 10        // bytes of a secret's value
	MaxEnvelope = MaxValue + 4096 // bytes of an envelope: the value, its header, age's
	macSize     = sha256.Size
	magic       = "moat-secret 1"
)

// AppLabel is the image config label that declares which app an image
// is (TENANT/APP): signed with the image, it is what a node trusts when
// it decides whether a container may have an app's secrets.
const AppLabel = "org.moatcloud.app"

// DefaultTenant is the tenant of apps that name none.
const DefaultTenant = "default"

// Binding is what an envelope's value belongs to. It travels inside the
// encryption, authenticated: nothing outside it can change it.
type Binding struct {
	Tenant  string `json:"tenant"`
	App     string `json:"app"`
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// Compiled on first use: the binary also runs as the shim.
var (
	nameRE   = lazyRE(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	tenantRE = lazyRE(`^[a-z][a-z0-9-]{0,29}$`)
)

func lazyRE(p string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(p) })
}

// ValidName reports whether s can name a secret: it becomes a file name
// under /run/secrets, so letters, digits, '_', '.', '-', starting with a
// letter or digit, at most 63.
func ValidName(s string) bool { return nameRE().MatchString(s) }

// ValidTenant reports whether s can name a tenant or an app (the spec's
// app name rule).
func ValidTenant(s string) bool { return tenantRE().MatchString(s) }

// Validate checks every field of b.
func (b Binding) Validate() error {
	switch {
	case !ValidTenant(b.Tenant):
		return fmt.Errorf("tenant %q: want 1 to 30 lowercase letters, digits and '-', starting with a letter", b.Tenant)
	case !ValidTenant(b.App):
		return fmt.Errorf("app %q: want 1 to 30 lowercase letters, digits and '-', starting with a letter", b.App)
	case !ValidName(b.Name):
		return fmt.Errorf("secret name %q: want letters, digits, '_', '.', '-' (max 63), starting with a letter or digit", b.Name)
	case b.Version < 1:
		return fmt.Errorf("secret version %d: want 1 or more", b.Version)
	}
	return nil
}

// AppRef is the app as an image's AppLabel names it: TENANT/APP.
func (b Binding) AppRef() string { return b.Tenant + "/" + b.App }

// String names the secret and its version.
func (b Binding) String() string {
	return fmt.Sprintf("%s/%s/%s version %d", b.Tenant, b.App, b.Name, b.Version)
}

// Seal encrypts value, bound to b, to the identity's recipient, with a MAC
// only holders of the identity can make. The recipient comes from the
// operator's own key, never from the master.
func Seal(b Binding, value []byte, id *age.X25519Identity) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if len(value) > MaxValue {
		return nil, fmt.Errorf("secret %s: %d bytes, more than the %d a secret may hold", b.Name, len(value), MaxValue)
	}
	plain := header(b, len(value))
	plain = append(plain, value...)
	plain = append(plain, mac(id, plain)...)
	var out bytes.Buffer
	w, err := age.Encrypt(&out, id.Recipient())
	if err != nil {
		return nil, fmt.Errorf("seal secret %s: %w", b.Name, err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("seal secret %s: %w", b.Name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal secret %s: %w", b.Name, err)
	}
	clear(plain)
	return out.Bytes(), nil
}

// ErrNoKey: none of the identities can open the envelope.
var ErrNoKey = errors.New("no secrets key here opens it")

// Open decrypts an envelope with the first of ids that can, checks its
// MAC with that identity, and returns its binding and value.
func Open(envelope []byte, ids []*age.X25519Identity) (Binding, []byte, error) {
	if len(envelope) > MaxEnvelope {
		return Binding{}, nil, fmt.Errorf("envelope of %d bytes: at most %d", len(envelope), MaxEnvelope)
	}
	for _, id := range ids {
		r, err := age.Decrypt(bytes.NewReader(envelope), id)
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			continue
		}
		if err != nil {
			return Binding{}, nil, fmt.Errorf("envelope: %w", err)
		}
		plain, err := io.ReadAll(io.LimitReader(r, MaxEnvelope+1))
		if err != nil {
			return Binding{}, nil, fmt.Errorf("envelope: %w", err)
		}
		b, value, sum, err := parsePlain(plain)
		if err != nil {
			return Binding{}, nil, fmt.Errorf("envelope: %w", err)
		}
		if !hmac.Equal(sum, mac(id, plain[:len(plain)-macSize])) {
			return Binding{}, nil, fmt.Errorf("envelope of %s: its MAC does not verify: it was not made with the cluster's secrets key", b)
		}
		return b, bytes.Clone(value), nil
	}
	return Binding{}, nil, fmt.Errorf("envelope: %w", ErrNoKey)
}

// header is the plaintext before the value.
func header(b Binding, size int) []byte {
	return fmt.Appendf(nil, "%s\ntenant %s\napp %s\nname %s\nversion %d\nsize %d\n\n", magic, b.Tenant, b.App, b.Name, b.Version, size)
}

// mac authenticates the header and value with a key derived from the
// identity: the master, which has no identity, cannot make one.
func mac(id *age.X25519Identity, data []byte) []byte {
	k := sha256.Sum256([]byte("moat-secret-mac 1\x00" + id.String()))
	h := hmac.New(sha256.New, k[:])
	h.Write(data)
	return h.Sum(nil)
}

// parsePlain splits a decrypted envelope into its binding, value and MAC,
// refusing anything but the exact shape header writes.
func parsePlain(p []byte) (Binding, []byte, []byte, error) {
	var b Binding
	rest := p
	fields := []string{"", "tenant", "app", "name", "version", "size"}
	vals := make([]string, len(fields))
	for i, key := range fields {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return b, nil, nil, fmt.Errorf("the header ends early")
		}
		rest = after
		if i == 0 {
			if string(line) != magic {
				return b, nil, nil, fmt.Errorf("not a moat secret (%q)", truncate(line))
			}
			continue
		}
		v, ok := strings.CutPrefix(string(line), key+" ")
		if !ok {
			return b, nil, nil, fmt.Errorf("header line %d: want %q, got %q", i+1, key, truncate(line))
		}
		vals[i] = v
	}
	if len(rest) == 0 || rest[0] != '\n' {
		return b, nil, nil, fmt.Errorf("no blank line after the header")
	}
	rest = rest[1:]
	version, err := number(vals[4])
	if err != nil {
		return b, nil, nil, fmt.Errorf("version: %w", err)
	}
	size, err := number(vals[5])
	if err != nil || size > MaxValue {
		return b, nil, nil, fmt.Errorf("size %q: want 0 to %d", vals[5], MaxValue)
	}
	b = Binding{Tenant: vals[1], App: vals[2], Name: vals[3], Version: version}
	if err := b.Validate(); err != nil {
		return b, nil, nil, err
	}
	if len(rest) != size+macSize {
		return b, nil, nil, fmt.Errorf("%d bytes after the header, want %d", len(rest), size+macSize)
	}
	return b, rest[:size], rest[size:], nil
}

// number parses a decimal without sign or leading zeros.
func number(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// ParseAppRef reads an app as an image declares it, TENANT/APP or APP (in
// the default tenant), and returns it as TENANT/APP.
func ParseAppRef(s string) (string, error) {
	tenant, app, ok := strings.Cut(s, "/")
	if !ok {
		tenant, app = DefaultTenant, s
	}
	if !ValidTenant(tenant) || !ValidTenant(app) {
		return "", fmt.Errorf("%q: want TENANT/APP or APP, each 1 to 30 lowercase letters, digits and '-', starting with a letter", s)
	}
	return tenant + "/" + app, nil
}
