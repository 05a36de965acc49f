package userauth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AuthKey parses the content of sshd's SSH_USER_AUTH file (ExposeAuthInfo)
// into the one key or certificate the session authenticated with. Every
// line must be a "publickey TYPE BASE64" line, and there must be exactly
// one: the api user's logins are publickey only (the sshd drop-in says so),
// and anything else means a configuration this code did not expect.
func AuthKey(info string) (ssh.PublicKey, error) {
	var key ssh.PublicKey
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		method, rest, _ := strings.Cut(line, " ")
		if method != "publickey" {
			return nil, fmt.Errorf("SSH_USER_AUTH: authentication method %q: only publickey is accepted", method)
		}
		if key != nil {
			return nil, errors.New("SSH_USER_AUTH: more than one public key")
		}
		k, err := ParseKey(rest)
		if err != nil {
			return nil, fmt.Errorf("SSH_USER_AUTH: %w", err)
		}
		key = k
	}
	if key == nil {
		return nil, errors.New("SSH_USER_AUTH: no public key")
	}
	return key, nil
}

// ParseKey parses "TYPE BASE64" (as sshd's %t %k give it, and
// SSH_USER_AUTH lines after the method), checking the type matches.
func ParseKey(s string) (ssh.PublicKey, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return nil, fmt.Errorf("key %q: want TYPE BASE64", truncate(s))
	}
	raw, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("key of type %s: %w", f[0], err)
	}
	key, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("key of type %s: %w", f[0], err)
	}
	if key.Type() != f[0] {
		return nil, fmt.Errorf("key says type %s but is %s", f[0], key.Type())
	}
	return key, nil
}

// KeyText is "TYPE BASE64" for key.
func KeyText(key ssh.PublicKey) string {
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(key)))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Credential names a certificate: its key id, serial and CA.
func Credential(cert *ssh.Certificate) string {
	return fmt.Sprintf("cert %q serial %d from CA %s", cert.KeyId, cert.Serial, ssh.FingerprintSHA256(cert.SignatureKey))
}

// CheckCert checks a user certificate as sshd does: a user certificate,
// validly signed by a CA trusted accepts, valid at now, with no
// critical option moat does not know. (force-command, source-address
// and verify-required are left to sshd, which enforces them before moat api runs.)
func CheckCert(cert *ssh.Certificate, trusted func(ca ssh.PublicKey) bool, now time.Time) error {
	if cert.CertType != ssh.UserCert {
		return errors.New("certificate: not a user certificate")
	}
	if !trusted(cert.SignatureKey) {
		return fmt.Errorf("certificate %q: its CA %s is not trusted", cert.KeyId, ssh.FingerprintSHA256(cert.SignatureKey))
	}
	c := &ssh.CertChecker{
		Clock:                    func() time.Time { return now },
		SupportedCriticalOptions: []string{"force-command", "source-address", "verify-required"},
	}
	// CheckCert wants a principal; the principals' mapping is Grants'.
	if len(cert.ValidPrincipals) == 0 {
		return fmt.Errorf("certificate %q: no principals", cert.KeyId)
	}
	if err := c.CheckCert(cert.ValidPrincipals[0], cert); err != nil {
		return fmt.Errorf("certificate %q: %w", cert.KeyId, err)
	}
	return nil
}

// Expires is when a certificate stops being valid; zero for never.
func Expires(cert *ssh.Certificate) time.Time {
	if cert.ValidBefore == ssh.CertTimeInfinity || cert.ValidBefore > 1<<62 {
		return time.Time{}
	}
	return time.Unix(int64(cert.ValidBefore), 0)
}

// Grant is one certificate principal that names a user.
type Grant struct {
	User      string `json:"user"`
	Principal string `json:"principal"`
}

// Grants maps a certificate's principals to users through userOf (a
// principal's user, "" for none). A certificate whose principals name more
// than one user names none: which one the operator meant is not for moat
// to guess. Principals that could not stand on a principals line are
// skipped.
func Grants(principals []string, userOf func(principal string) string) ([]Grant, error) {
	var out []Grant
	for _, p := range principals {
		if ValidPrincipal(p) != nil {
			continue
		}
		u := userOf(p)
		if u == "" {
			continue
		}
		if len(out) > 0 && out[0].User != u {
			return nil, fmt.Errorf("certificate principals name two users, %s (%s) and %s (%s)", out[0].User, out[0].Principal, u, p)
		}
		out = append(out, Grant{User: u, Principal: p})
	}
	return out, nil
}
