package access

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// callers are who asks, in tenant "shop": each name is what the want
// strings below list.
var callers = []struct {
	name     string
	bindings []Binding
	local    bool
}{
	{"viewer", []Binding{{"shop", Viewer}}, false},
	{"deployer", []Binding{{"shop", Deployer}}, false},
	{"admin", []Binding{{"shop", Admin}}, false},
	{"*viewer", []Binding{{"*", Viewer}}, false},
	{"*deployer", []Binding{{"*", Deployer}}, false},
	{"cluster-admin", []Binding{{"*", Admin}}, false},
	// Roles in another tenant count for nothing in this one.
	{"other-admin", []Binding{{"blog", Admin}}, false},
	{"other-admin+viewer", []Binding{{"blog", Admin}, {"shop", Viewer}}, false},
	{"none", nil, false},
	{"local", nil, true},
}

// Who may, written out by hand (not derived from rules): every action
// moat knows, every caller above.
const (
	anyone    = "viewer deployer admin *viewer *deployer cluster-admin other-admin other-admin+viewer none local"
	viewers   = "viewer deployer admin *viewer *deployer cluster-admin other-admin+viewer local"
	deployers = "deployer admin *deployer cluster-admin local"
	admins    = "admin cluster-admin local"
	cluster   = "cluster-admin local"
	localOnly = "local"
)

var want = map[Action]string{
	"ping": anyone, "whoami": anyone,
	"app.ls": viewers, "app.ps": viewers, "app.history": viewers, "app.progress": viewers, "app.logs": viewers,
	"quota.read": viewers, "alert.ls": viewers, "alert.webhook": cluster,
	"app.deploy": deployers, "app.scale": deployers, "app.rollback": deployers, "app.promote": deployers,
	"secret.ls": deployers, "secret.set": deployers, "secret.rm": deployers,
	"app.rm": admins, "app.dial": admins,
	"user.ls": admins, "user.add": admins, "user.rm": admins, "user.role": admins,
	"user.trust-ca": cluster, "audit.read": cluster,
	"tenant.ls": cluster, "tenant.add": cluster, "tenant.rm": cluster, "quota.set": cluster, "secret.rotate": cluster,
	"node.ls": cluster, "node.add": cluster, "node.rm": cluster, "node.cordon": cluster, "node.drain": cluster,
	"node.audit": cluster, "node.dial": cluster, "master.key": cluster,
	"image.ls": cluster, "image.inspect": cluster, "image.import": cluster, "image.sign": cluster,
	"image.rm": cluster, "image.gc": cluster, "delivery.stats": cluster,
	"metrics.prometheus": cluster,
	"pool.ls":            cluster, "pool.add": cluster, "pool.set": cluster, "pool.rm": cluster, "pool.scale": cluster,
	"cost.read": viewers, "autoscaler.read": viewers,
	"debug": localOnly,
}

// TestAllow: every action × every caller, in the caller's tenant.
func TestAllow(t *testing.T) {
	for _, r := range Rules() {
		allowed, ok := want[r.Action]
		if !ok {
			t.Errorf("action %s: the test does not say who may", r.Action)
			continue
		}
		who := map[string]bool{}
		for _, n := range strings.Fields(allowed) {
			who[n] = true
		}
		for _, c := range callers {
			err := Allow(c.bindings, c.local, r.Action, "shop")
			if who[c.name] && err != nil {
				t.Errorf("%s by %s: refused (%v); want allowed", r.Action, c.name, err)
			}
			if !who[c.name] && !errors.Is(err, errs.ErrForbidden) {
				t.Errorf("%s by %s: %v; want forbidden", r.Action, c.name, err)
			}
		}
	}
	for a := range want {
		if _, ok := RuleFor(a); !ok {
			t.Errorf("the test lists %s, which no rule has", a)
		}
	}
}

// TestAllowTenants: a role holds in its tenant and nowhere else; only a
// binding on every tenant holds in "*" or an empty tenant.
func TestAllowTenants(t *testing.T) {
	tests := []struct {
		bindings []Binding
		action   Action
		tenant   string
		allowed  bool
	}{
		{[]Binding{{"shop", Deployer}}, AppDeploy, "shop", true},
		{[]Binding{{"shop", Deployer}}, AppDeploy, "blog", false},
		{[]Binding{{"shop", Deployer}}, AppDeploy, "*", false},
		{[]Binding{{"shop", Deployer}}, AppDeploy, "", false},
		{[]Binding{{"shop", Admin}}, UserRole, "*", false}, // granting on * takes a cluster admin
		{[]Binding{{"*", Admin}}, UserRole, "*", true},
		{[]Binding{{"*", Deployer}}, AppDeploy, "blog", true},
		{[]Binding{{"*", Deployer}}, AppRemove, "blog", false},
		{[]Binding{{"shop", Viewer}, {"blog", Admin}}, AppRemove, "blog", true},
		{[]Binding{{"shop", Viewer}, {"blog", Admin}}, AppRemove, "shop", false},
		{[]Binding{{"shop", Admin}, {"blog", Admin}}, NodeAdd, "shop", false}, // admin of every tenant by name is not a cluster admin
		{[]Binding{{"shop", "root"}}, AppList, "shop", false},                 // no such role
	}
	for _, tt := range tests {
		err := Allow(tt.bindings, false, tt.action, tt.tenant)
		if (err == nil) != tt.allowed {
			t.Errorf("%v %s in %q: %v; want allowed=%t", tt.bindings, tt.action, tt.tenant, err, tt.allowed)
		}
	}
}

// TestAllowUnknownAction: an action no rule lists is refused, to root too.
func TestAllowUnknownAction(t *testing.T) {
	for _, local := range []bool{false, true} {
		if err := Allow([]Binding{{"*", Admin}}, local, "app.launch-missiles", "shop"); !errors.Is(err, errs.ErrForbidden) {
			t.Errorf("local=%t: %v; want forbidden", local, err)
		}
	}
}

// TestRefusalNamesWhat: a refusal names the action, the tenant, the
// roles that would do and the roles the caller has.
func TestRefusalNamesWhat(t *testing.T) {
	tests := []struct {
		bindings []Binding
		action   Action
		want     []string
	}{
		{[]Binding{{"shop", Viewer}, {"blog", Admin}}, AppDeploy,
			[]string{"app.deploy", `tenant "shop"`, "deployer or admin", "viewer on shop, admin on blog"}},
		{nil, AppList, []string{"app.ls", `"shop"`, "viewer, deployer or admin", "no role in any tenant"}},
		{[]Binding{{"shop", Admin}}, NodeAdd, []string{"node.add", `"shop"`, "cluster admin", "admin on shop"}},
		{[]Binding{{"*", Admin}}, Debug, []string{"debug", "own socket", `"shop"`}},
	}
	for _, tt := range tests {
		err := Allow(tt.bindings, false, tt.action, "shop")
		if err == nil {
			t.Fatalf("%s allowed", tt.action)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.action, err, w)
			}
		}
	}
}

// TestRules: one rule per action; tenant rules name the weakest role
// that may, others name none; every rule says which commands ask.
func TestRules(t *testing.T) {
	seen := map[Action]bool{}
	for _, r := range Rules() {
		if seen[r.Action] {
			t.Errorf("%s has two rules", r.Action)
		}
		seen[r.Action] = true
		if (r.Scope == InTenant) != (r.Min.rank() > 0) {
			t.Errorf("%s: scope %d with role %q", r.Action, r.Scope, r.Min)
		}
		if r.Commands == "" {
			t.Errorf("%s names no command", r.Action)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d rules, %d in the test's table", len(seen), len(want))
	}
}

func TestNeedsRoles(t *testing.T) {
	tests := []struct {
		local  bool
		action Action
		want   bool
	}{
		{false, AppDeploy, true}, {false, NodeAdd, true}, {true, AppDeploy, false},
		{false, WhoAmI, false}, {false, Debug, false}, {false, "nope", false},
	}
	for _, tt := range tests {
		if got := NeedsRoles(tt.local, tt.action); got != tt.want {
			t.Errorf("NeedsRoles(%t, %s) = %t", tt.local, tt.action, got)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "root", "Admin", "*"} {
		if _, err := ParseRole(s); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseRole(%q): %v; want invalid", s, err)
		}
	}
}

// TestAllowOver: a user is managed only by who may do the action in
// every tenant they have a role in.
func TestAllowOver(t *testing.T) {
	shopAdmin := []Binding{{"shop", Admin}}
	tests := []struct {
		name    string
		caller  []Binding
		local   bool
		target  []Binding
		allowed bool
	}{
		{"own tenant's user", shopAdmin, false, []Binding{{"shop", Viewer}}, true},
		{"a user of two tenants", shopAdmin, false, []Binding{{"shop", Viewer}, {"blog", Viewer}}, false},
		{"admin of both", []Binding{{"shop", Admin}, {"blog", Admin}}, false, []Binding{{"shop", Viewer}, {"blog", Deployer}}, true},
		{"a cluster admin", shopAdmin, false, []Binding{{"*", Admin}}, false},
		{"a viewer everywhere", shopAdmin, false, []Binding{{"*", Viewer}}, false},
		{"by a cluster admin", []Binding{{"*", Admin}}, false, []Binding{{"*", Admin}, {"shop", Viewer}}, true},
		{"by a deployer", []Binding{{"shop", Deployer}}, false, []Binding{{"shop", Viewer}}, false},
		{"by root", nil, true, []Binding{{"*", Admin}}, true},
		{"a user without roles", shopAdmin, false, nil, true},
	}
	for _, tt := range tests {
		err := AllowOver(tt.caller, tt.local, UserRemove, "bob", tt.target)
		if (err == nil) != tt.allowed {
			t.Errorf("%s: %v; want allowed=%t", tt.name, err, tt.allowed)
		}
		if err != nil && (!errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), "bob holds")) {
			t.Errorf("%s: %v: want forbidden, naming the user", tt.name, err)
		}
	}
}
