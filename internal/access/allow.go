package access

import (
	"fmt"

	"github.com/moatcloud/moat/internal/errs"
)

// Allow says whether a caller with bindings (and local: root on the
// master's own socket) may do a in tenant: nil, or an errs.ErrForbidden
// naming the action, the tenant and the roles the caller has.
func Allow(bindings []Binding, local bool, a Action, tenant string) error {
	rule, ok := RuleFor(a)
	if !ok {
		// An action nobody listed is nobody's, not even root's: it is a
		// bug to ask, and refusing shows it at once.
		return fmt.Errorf("%s is not an action moat knows: %w", a, errs.ErrForbidden)
	}
	if local {
		return nil
	}
	switch rule.Scope {
	case Anyone:
		return nil
	case InTenant:
		for _, b := range bindings {
			if b.holds(tenant) && b.Role.rank() >= rule.Min.rank() {
				return nil
			}
		}
		return fmt.Errorf("%s in tenant %q needs %s there; you have %s: %w", a, tenant, atLeast(rule.Min), describe(bindings), errs.ErrForbidden)
	case Cluster:
		if ClusterAdmin(bindings) {
			return nil
		}
		return fmt.Errorf("%s (asked in tenant %q) needs a cluster admin (admin on *); you have %s: %w", a, tenant, describe(bindings), errs.ErrForbidden)
	default:
		// Whatever roles the caller holds: they are not asked for.
		return fmt.Errorf("%s is for root on the master's own socket only (asked in tenant %q): %w", a, tenant, errs.ErrForbidden)
	}
}

// atLeast names the roles that are min or stronger: "deployer or admin".
func atLeast(min Role) string {
	rs := Roles[min.rank()-1:]
	s := string(rs[0])
	for i, r := range rs[1:] {
		if i == len(rs)-2 {
			s += " or " + string(r)
		} else {
			s += ", " + string(r)
		}
	}
	return s
}

// NeedsRoles says whether deciding on a takes the caller's bindings:
// not for root on the local socket, nor for what anyone may do. The
// master skips looking them up otherwise.
func NeedsRoles(local bool, a Action) bool {
	r, ok := RuleFor(a)
	return !local && ok && r.Scope != Anyone && r.Scope != LocalOnly
}

// AllowOver says whether a caller with bindings may do a to a user who
// holds target: only if they may do it in every tenant the user has a
// role in (on "*": only a cluster admin). A tenant's admin manages the
// users of their tenant, and cannot, by adding a key to one, become a
// user who is more elsewhere.
func AllowOver(bindings []Binding, local bool, a Action, user string, target []Binding) error {
	for _, t := range target {
		if err := Allow(bindings, local, a, t.Tenant); err != nil {
			return fmt.Errorf("%s holds %s: %w", user, t, err)
		}
	}
	return nil
}
