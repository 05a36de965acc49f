// Package privilege says what widens a container beyond moat's strict
// defaults and decides, purely, whether a request may have it.
//
// The rule: the master decides where and when signed software runs, never
// with which privileges. A privilege is granted only if the image declares
// it in its config, which the signed manifest digest covers (the release
// signer decided), or if the node's operator allows it in
// /etc/moat/node.conf. What an image declares it gets by default; a
// request may only take declared privileges away (Drop, or a strict value
// such as readOnlyRootfs: true), or ask for what the image or the node
// allows. Root on the node itself (the operator, on the daemon's own
// socket) may ask for anything.
package privilege

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// Label is the image config label that declares an image's privileges:
// `moat image build --privilege` writes it, comma-separated.
const Label = "org.moatcloud.privileges"

// The privileges besides capabilities ("cap:NET_BIND_SERVICE").
const (
	Root              = "root"               // run as uid 0
	WritableRoot      = "writable-root"      // the root filesystem is writable
	NewPrivileges     = "new-privileges"     // no_new_privs off: setuid and file capabilities work
	SeccompUnconfined = "seccomp-unconfined" // no seccomp filter
	HostNetwork       = "host-network"       // the node's own network namespace
	capPrefix         = "cap:"
)

// named lists the privileges that are not capabilities, for messages.
var named = []string{Root, WritableRoot, NewPrivileges, SeccompUnconfined, HostNetwork}

// maxText bounds what Parse reads: a label or a setting, not a document.
const maxText = 4096

// Set is a set of privileges by canonical name.
type Set map[string]bool

// Cap is the privilege of holding a capability; name as capabilities(7)
// spells it, with or without CAP_.
func Cap(name string) (string, bool) {
	c, ok := CapabilityName(name)
	return capPrefix + strings.TrimPrefix(c, "CAP_"), ok
}

// Parse reads a list of privileges separated by commas or white space:
// root, writable-root, new-privileges, seccomp-unconfined, host-network,
// cap:NAME. The error names the first word that is none of them.
func Parse(s string) (Set, error) {
	if len(s) > maxText {
		return nil, errs.Invalid("", "privileges: %d bytes, at most %d", len(s), maxText)
	}
	set := Set{}
	for _, word := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		p, err := canonical(word)
		if err != nil {
			return nil, err
		}
		set[p] = true
	}
	return set, nil
}

// ParseList is Parse of one privilege per element.
func ParseList(words []string) (Set, error) {
	set := Set{}
	for _, w := range words {
		p, err := canonical(w)
		if err != nil {
			return nil, err
		}
		set[p] = true
	}
	return set, nil
}

func canonical(word string) (string, error) {
	w := strings.ToLower(strings.TrimSpace(word))
	if slices.Contains(named, w) {
		return w, nil
	}
	if strings.HasPrefix(w, capPrefix) {
		name := strings.TrimSpace(word)[len(capPrefix):]
		if c, ok := Cap(name); ok {
			return c, nil
		}
		return "", errs.Invalid("", "privilege %s: %s is not a Linux capability", quote(word), quote(name))
	}
	return "", errs.Invalid("", "%s is not a privilege: want cap:NAME, %s", quote(word), strings.Join(named, ", "))
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// Sorted lists the set's privileges in order.
func (s Set) Sorted() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// String is the set as Label holds it.
func (s Set) String() string { return strings.Join(s.Sorted(), ",") }

// Caps lists the capabilities in the set, as runc names them (CAP_...).
func (s Set) Caps() []string {
	var out []string
	for _, p := range s.Sorted() {
		if name, ok := strings.CutPrefix(p, capPrefix); ok {
			out = append(out, "CAP_"+name)
		}
	}
	return out
}

// Declared reads what an image's config labels declare. A label that does
// not parse declares nothing and is an error: the image is refused rather
// than run with a guess.
func Declared(labels map[string]string) (Set, error) {
	v, ok := labels[Label]
	if !ok {
		return Set{}, nil
	}
	set, err := Parse(v)
	if err != nil {
		return nil, fmt.Errorf("the image's %s label: %w", Label, err)
	}
	return set, nil
}
