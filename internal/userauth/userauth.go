// Package userauth is how an operator's SSH login on the master's host
// becomes a caller of the master's API: the preamble `moat api` writes on
// the master's api socket before the client's bytes, the SSH_USER_AUTH
// lines sshd exposes, the authorized_keys and principals lines sshd asks
// for, user names, and certificate checks. It is pure: the master and the
// CLI do the I/O.
package userauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Magic starts every preamble: a connection that starts otherwise is not
// moat api's, and is closed.
const Magic = "moat-api/1 "

// MaxPreamble bounds the preamble line (a certificate is a few KiB).
const MaxPreamble = 64 << 10

// What a connection on the api socket is for.
const (
	KindSession    = "session"    // an operator's SSH session: HTTP follows
	KindKeys       = "keys"       // sshd's AuthorizedKeysCommand: who has this key?
	KindPrincipals = "principals" // sshd's AuthorizedPrincipalsCommand: who may this certificate be?
)

// Preamble is the first line `moat api` writes on the api socket. It is
// written by moat running as the api user, from what sshd put in its
// environment, before a single byte of the client's: the client cannot
// write or change it.
type Preamble struct {
	Kind string `json:"kind"`
	// User is what the forced command's --user says: a cross-check only,
	// the master finds the user from Auth itself.
	User string `json:"user,omitempty"`
	// Auth is the content of the file SSH_USER_AUTH names (ExposeAuthInfo):
	// the methods and the key or certificate the session authenticated with.
	Auth string `json:"auth,omitempty"`
	// Client is SSH_CONNECTION: the client's address and port, ours.
	Client string `json:"client,omitempty"`
	// Key is the key or certificate sshd asks about ("TYPE BASE64"), for
	// keys and principals lookups.
	Key string `json:"key,omitempty"`
}

// WritePreamble writes p as one line.
func WritePreamble(w io.Writer, p Preamble) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if len(Magic)+len(b)+1 > MaxPreamble {
		return fmt.Errorf("api preamble of %d bytes: at most %d", len(b), MaxPreamble)
	}
	_, err = w.Write(append(append([]byte(Magic), b...), '\n'))
	return err
}

// ReadPreamble reads the preamble line from r, and nothing after it.
func ReadPreamble(r *bufio.Reader) (Preamble, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxPreamble {
			return Preamble{}, fmt.Errorf("api preamble longer than %d bytes", MaxPreamble)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return Preamble{}, fmt.Errorf("read api preamble: %w", err)
		}
	}
	return ParsePreamble(line)
}

// ParsePreamble parses one preamble line (with its newline).
func ParsePreamble(line []byte) (Preamble, error) {
	body, ok := bytes.CutPrefix(line, []byte(Magic))
	if !ok {
		return Preamble{}, errors.New("not a moat api preamble")
	}
	body, ok = bytes.CutSuffix(body, []byte("\n"))
	if !ok || bytes.ContainsAny(body, "\n\r") {
		return Preamble{}, errors.New("api preamble: not one line")
	}
	var p Preamble
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Preamble{}, fmt.Errorf("api preamble: %w", err)
	}
	if dec.More() {
		return Preamble{}, errors.New("api preamble: data after the object")
	}
	switch p.Kind {
	case KindSession:
		if p.Auth == "" {
			return Preamble{}, errors.New("api preamble: a session without SSH_USER_AUTH")
		}
		if p.User != "" {
			if err := ValidName(p.User); err != nil {
				return Preamble{}, fmt.Errorf("api preamble: %w", err)
			}
		}
	case KindKeys, KindPrincipals:
		if p.Key == "" {
			return Preamble{}, fmt.Errorf("api preamble: a %s lookup without a key", p.Kind)
		}
	default:
		return Preamble{}, fmt.Errorf("api preamble: unknown kind %q", p.Kind)
	}
	return p, nil
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)

// ValidName checks a user's name: lowercase letters, digits, '.', '_',
// '-', starting with a letter, at most 32 characters. It goes into the
// forced command sshd runs, so nothing there needs quoting.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("user name %q: want a lowercase letter, then up to 31 lowercase letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// ValidPrincipal checks a certificate principal that names a user: it
// stands alone on an AuthorizedPrincipalsCommand line, so no spaces,
// quotes, commas or control characters.
func ValidPrincipal(p string) error {
	if p == "" || len(p) > 256 {
		return fmt.Errorf("principal %q: want 1 to 256 characters", p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == ',' || r == '#' || r == '\\' || r > 0x7e {
			return fmt.Errorf("principal %q: only printable ASCII without spaces, quotes, commas, '#' or '\\'", p)
		}
	}
	return nil
}

// ParseRoleTenant parses ROLE[@TENANT] (tenant "default" when absent;
// "*" is every tenant).
func ParseRoleTenant(s string) (role, tenant string, err error) {
	role, tenant, ok := strings.Cut(s, "@")
	if !ok {
		tenant = "default"
	}
	switch role {
	case "admin", "deployer", "viewer":
	default:
		return "", "", fmt.Errorf("role %q: want admin, deployer or viewer", role)
	}
	if tenant != "*" && !nameRE.MatchString(tenant) {
		return "", "", fmt.Errorf("tenant %q in %q: want a name of lowercase letters, digits, '.', '_', '-', or * for every tenant", tenant, s)
	}
	return role, tenant, nil
}

// ForcedCommand is the command sshd runs for a user's login.
func ForcedCommand(bin, user string) string { return bin + " api --user " + user }

// AuthorizedLine is the authorized_keys line AuthorizedKeysCommand prints
// for a user's key (key is "TYPE BASE64"): nothing but the api, whatever
// the client asks.
func AuthorizedLine(bin, user, key string) string {
	return `restrict,command="` + ForcedCommand(bin, user) + `" ` + key
}

// PrincipalLine is the line AuthorizedPrincipalsCommand prints for a
// principal that maps to a user.
func PrincipalLine(bin, user, principal string) string {
	return `restrict,command="` + ForcedCommand(bin, user) + `" ` + principal
}
