package access

import (
	"fmt"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// Role is what a user may do in a tenant. Each role may do everything the
// ones before it may: viewer, then deployer, then admin.
type Role string

// The roles.
const (
	Viewer   Role = "viewer"   // read-only: apps, replicas, history, logs
	Deployer Role = "deployer" // and deploy, scale, roll back, promote, secrets
	Admin    Role = "admin"    // and everything else in the tenant, its users included
)

// Roles are the roles, weakest first.
var Roles = []Role{Viewer, Deployer, Admin}

// rank orders roles; 0 is no role.
func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.rank() > 0 {
		return r, nil
	}
	return "", errs.Invalid("role", "%q is not a role: want viewer, deployer or admin", s)
}

// AllTenants is the tenant of a binding that holds in every tenant: admin
// on it is a cluster admin.
const AllTenants = "*"

// Binding gives a user a role in a tenant (or in every one: AllTenants).
type Binding struct {
	Tenant string `json:"tenant"`
	Role   Role   `json:"role"`
}

func (b Binding) String() string {
	if b.Tenant == AllTenants {
		return string(b.Role) + " on every tenant (*)"
	}
	return fmt.Sprintf("%s on %s", b.Role, b.Tenant)
}

// holds says whether b applies in tenant: its own, or every tenant's.
// A binding in one tenant never applies to "*" (what only a cluster
// admin may touch).
func (b Binding) holds(tenant string) bool {
	return b.Tenant == AllTenants || b.Tenant == tenant
}

// ClusterAdmin says whether bindings make a cluster admin.
func ClusterAdmin(bindings []Binding) bool {
	for _, b := range bindings {
		if b.Tenant == AllTenants && b.Role == Admin {
			return true
		}
	}
	return false
}

// describe lists bindings for an error message.
func describe(bindings []Binding) string {
	if len(bindings) == 0 {
		return "no role in any tenant"
	}
	s := make([]string, len(bindings))
	for i, b := range bindings {
		s[i] = b.String()
	}
	return strings.Join(s, ", ")
}
