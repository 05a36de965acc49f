package sign

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AllowedSigner is one line of an allowed_signers file (see "ALLOWED
// SIGNERS" in ssh-keygen(1)).
type AllowedSigner struct {
	Line          int
	Principals    []string
	Key           ssh.PublicKey
	CertAuthority bool
	Namespaces    []string  // patterns; empty: any
	ValidAfter    time.Time // zero: always
	ValidBefore   time.Time // zero: forever
}

// ParseAllowedSigners reads an allowed_signers file. Errors name the line.
func ParseAllowedSigners(data []byte) ([]AllowedSigner, error) {
	var out []AllowedSigner
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSignerLine(line)
		if err != nil {
			return nil, fmt.Errorf("allowed signers line %d: %w", i+1, err)
		}
		s.Line = i + 1
		out = append(out, s)
	}
	return out, nil
}

func parseSignerLine(line string) (AllowedSigner, error) {
	var s AllowedSigner
	principals, rest := nextField(line)
	if principals == "" || rest == "" {
		return s, errors.New("want: PRINCIPALS [OPTIONS] KEYTYPE KEY")
	}
	for _, p := range strings.Split(principals, ",") {
		if p == "" {
			return s, fmt.Errorf("empty principal in %q", principals)
		}
		s.Principals = append(s.Principals, p)
	}
	// Options come before the key; a key type never contains '='.
	if first, after := nextField(rest); !isKeyType(first) {
		if err := s.parseOptions(first); err != nil {
			return s, err
		}
		rest = after
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return s, fmt.Errorf("public key: %w", err)
	}
	s.Key = key
	return s, nil
}

// nextField splits off the first field; double quotes group (options
// may quote values).
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	quoted := false
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case (r == ' ' || r == '\t') && !quoted:
			return s[:i], strings.TrimLeft(s[i:], " \t")
		}
	}
	return s, ""
}

func isKeyType(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-") || strings.HasPrefix(s, "rsa-")
}

func (s *AllowedSigner) parseOptions(opts string) error {
	for _, opt := range splitOptions(opts) {
		name, value, hasValue := strings.Cut(opt, "=")
		if hasValue {
			if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
				return fmt.Errorf("option %s: value must be in double quotes", name)
			}
			value = value[1 : len(value)-1]
		}
		var err error
		switch strings.ToLower(name) {
		case "cert-authority":
			s.CertAuthority = true
		case "namespaces":
			s.Namespaces = strings.Split(value, ",")
		case "valid-after":
			s.ValidAfter, err = parseTimestamp(value)
		case "valid-before":
			s.ValidBefore, err = parseTimestamp(value)
		default:
			return fmt.Errorf("unknown option %q", name)
		}
		if err != nil {
			return fmt.Errorf("option %s: %w", name, err)
		}
	}
	return nil
}

// splitOptions splits on commas outside double quotes.
func splitOptions(s string) []string {
	var out []string
	quoted, start := false, 0
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseTimestamp reads YYYYMMDD[HHMM[SS]][Z]: UTC with the Z, local time
// without, as OpenSSH does.
func parseTimestamp(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		v, loc = v[:len(v)-1], time.UTC
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if !ok {
		return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	return t, nil
}

// allows says whether the signer may sign in this namespace.
func (s AllowedSigner) allows(namespace string) bool {
	if len(s.Namespaces) == 0 {
		return true
	}
	ok := false
	for _, p := range s.Namespaces {
		if neg, found := strings.CutPrefix(p, "!"); found {
			if wildcard(neg, namespace) {
				return false
			}
		} else if wildcard(p, namespace) {
			ok = true
		}
	}
	return ok
}

// wildcard matches OpenSSH patterns: * any run, ? any one character.
func wildcard(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// ParseRevoked reads a list of revoked public keys, one per line in
// authorized_keys form (# comments allowed). OpenSSH's binary KRLs are
// not read: list the keys.
func ParseRevoked(data []byte) ([]ssh.PublicKey, error) {
	var out []ssh.PublicKey
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := bytes.TrimSpace(raw)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("revoked signers line %d: want a public key (binary KRLs are not read): %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}
