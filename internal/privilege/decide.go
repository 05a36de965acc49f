package privilege

import "strings"

// Request is what a container request says about privileges: the node
// API's security settings (nodeapi.Security). A nil bool or an empty
// string is "not given".
type Request struct {
	CapAdd          []string
	ReadOnlyRootfs  *bool
	NoNewPrivileges *bool
	Seccomp         string // "default" or "unconfined"
	Network         string // "none" or "host"
	Drop            []string
}

// Asked is what a request explicitly asks for beyond the defaults. Running
// as root is asked when the resolved user is uid 0, which only the node
// knows: the caller adds Root then.
func Asked(sec Request) Set {
	set := Set{}
	for _, c := range sec.CapAdd {
		if p, ok := Cap(strings.TrimPrefix(strings.ToUpper(c), "CAP_")); ok {
			set[p] = true
		}
	}
	if sec.ReadOnlyRootfs != nil && !*sec.ReadOnlyRootfs {
		set[WritableRoot] = true
	}
	if sec.NoNewPrivileges != nil && !*sec.NoNewPrivileges {
		set[NewPrivileges] = true
	}
	if sec.Seccomp == "unconfined" {
		set[SeccompUnconfined] = true
	}
	if sec.Network == "host" {
		set[HostNetwork] = true
	}
	return set
}

// Missing lists, in order, what asked holds that neither the image
// declares nor the node allows. Empty: the request may run. Pure.
func Missing(asked, declared, allowed Set) []string {
	var out []string
	for _, p := range asked.Sorted() {
		if !declared[p] && !allowed[p] {
			out = append(out, p)
		}
	}
	return out
}

// Grant is what a container gets.
type Grant struct {
	Caps              []string // CAP_... names, sorted
	WritableRoot      bool
	NewPrivileges     bool
	SeccompUnconfined bool
	HostNetwork       bool
}

// Effective is what a container gets: what its image declares, less what
// the request drops or turns to the strict value, plus what it asks for
// (checked with Missing first). Pure.
func Effective(declared Set, sec Request, drop Set) Grant {
	on := func(p string, asked *bool) bool {
		if asked != nil {
			return *asked
		}
		return declared[p] && !drop[p]
	}
	caps := Set{}
	for p := range declared {
		if strings.HasPrefix(p, capPrefix) && !drop[p] {
			caps[p] = true
		}
	}
	asked := Asked(sec)
	for p := range asked {
		if strings.HasPrefix(p, capPrefix) {
			caps[p] = true
		}
	}
	return Grant{
		Caps:              caps.Caps(),
		WritableRoot:      on(WritableRoot, invert(sec.ReadOnlyRootfs)),
		NewPrivileges:     on(NewPrivileges, invert(sec.NoNewPrivileges)),
		SeccompUnconfined: on(SeccompUnconfined, choice(sec.Seccomp, "unconfined", "default")),
		HostNetwork:       on(HostNetwork, choice(sec.Network, "host", "none")),
	}
}

func invert(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := !*b
	return &v
}

// choice turns a setting with a wide and a strict value into "asked on",
// "asked off" or nil (not given).
func choice(v, wide, strict string) *bool {
	var b bool
	switch v {
	case wide:
		b = true
	case strict:
	default:
		return nil
	}
	return &b
}
