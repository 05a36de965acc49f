package sshkey

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyChanged means a node presented a host key other than the one
// pinned at enrolment: a reinstalled machine, or someone in the middle.
var ErrHostKeyChanged = errors.New("host key changed")

// PinnedHostKey accepts exactly the key pinned for the node and refuses any
// other loudly, naming both fingerprints.
func PinnedHostKey(node string, pinned ssh.PublicKey) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		if pinned == nil {
			return fmt.Errorf("node %s: no host key pinned: %w", node, ErrHostKeyChanged)
		}
		if key.Type() == pinned.Type() && bytes.Equal(key.Marshal(), pinned.Marshal()) {
			return nil
		}
		return fmt.Errorf("node %s at %s presented host key %s, but %s was pinned at enrolment; refusing to connect: "+
			"if the machine was reinstalled, enrol it again (moat node add), otherwise someone may be in the middle: %w",
			node, remote, ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(pinned), ErrHostKeyChanged)
	}
}

// Algorithms lists the host key algorithms that verify with key: asking
// for exactly these makes a node with several host keys show the pinned one.
func Algorithms(key ssh.PublicKey) []string {
	if key == nil {
		return nil
	}
	if key.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{key.Type()}
}
