package hardening

import (
	"fmt"
	"slices"
	"strings"
)

// strong is what the audit accepts in force, per `sshd -T` key: what the
// drop-in keeps, the certificate forms of those host keys, and the
// post-quantum key exchanges of OpenSSH releases newer than the lists.
var strong = map[string][]string{
	"kexalgorithms": append(slices.Clone(Kex), "mlkem768x25519-sha256",
		"kex-strict-s-v00@openssh.com", "kex-strict-c-v00@openssh.com"),
	"ciphers": Ciphers,
	"macs":    MACs,
	"hostkeyalgorithms": append(slices.Clone(hostKeyAlgs),
		"ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com"),
}

// AlgorithmKeys are the `sshd -T` keys Weak judges.
var AlgorithmKeys = []string{"kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"}

// Weak splits what an algorithm list in force offers beyond what moat
// keeps into the merely weak (NIST curves, small groups, non-ETM or
// 64-bit-tag MACs) and the broken (SHA-1, MD5, CBC, 3DES, RC4, DSA). Pure.
func Weak(key, list string) (weak, broken []string) {
	for _, alg := range strings.Split(list, ",") {
		alg = strings.TrimSpace(alg)
		if alg == "" || slices.Contains(strong[key], alg) {
			continue
		}
		if isBroken(alg) {
			broken = append(broken, alg)
		} else {
			weak = append(weak, alg)
		}
	}
	return weak, broken
}

func isBroken(alg string) bool {
	if alg == "ssh-rsa" || alg == "ssh-dss" || strings.HasPrefix(alg, "ssh-rsa-cert") || strings.HasPrefix(alg, "ssh-dss-cert") {
		return true
	}
	for _, bad := range []string{"sha1", "md5", "-cbc", "3des", "arcfour", "rc4", "blowfish", "cast128", "rijndael"} {
		if strings.Contains(alg, bad) {
			return true
		}
	}
	return false
}

// NotInForce lists the settings of a drop-in that `sshd -T` does not show
// in force, as "key: in force VALUE, the drop-in says VALUE". Pure.
func NotInForce(settings []Setting, effective map[string]string) []string {
	var out []string
	for _, s := range settings {
		key := strings.ToLower(s.Key)
		got, ok := effective[key]
		if !ok {
			continue // a keyword this sshd prints under another name
		}
		if !strings.EqualFold(strings.TrimSpace(got), s.Value) {
			out = append(out, fmt.Sprintf("%s: in force %s, the drop-in says %s", key, got, s.Value))
		}
	}
	return out
}
