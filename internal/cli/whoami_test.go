package cli

import (
	"testing"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestWhoAmIRoles(t *testing.T) {
	tests := []struct {
		me   masterapi.WhoAmI
		want string
	}{
		{masterapi.WhoAmI{User: "root", Local: true}, "everything (root on the master's own socket)"},
		{masterapi.WhoAmI{User: "bob"}, "none"},
		{masterapi.WhoAmI{User: "alice", Roles: []masterapi.RoleBinding{{Tenant: "shop", Role: "deployer"}, {Tenant: "*", Role: "viewer"}}},
			"deployer on shop, viewer on every tenant (*)"},
	}
	for _, tt := range tests {
		if got := roles(tt.me); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.me.User, got, tt.want)
		}
	}
}
