package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the master takes you for: user, credential, tenant, roles",
		Long: `Show who the master takes you for: the user, how you proved it (a key's
fingerprint, a certificate's key id, or root on the master's own socket),
the tenant your requests act in, and your roles in every tenant. What the
roles allow is README's role table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			me, err := a.masterClient().WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, me)
			}
			return table(a.stdout, [][]string{
				{"user:", me.User},
				{"credential:", me.Credential},
				{"tenant:", orDash(me.Tenant)},
				{"roles:", roles(me)},
			})
		},
	}
}

// roles lists a caller's roles for people: "deployer on shop, viewer on
// every tenant (*)".
func roles(me masterapi.WhoAmI) string {
	if me.Local {
		return "everything (root on the master's own socket)"
	}
	if len(me.Roles) == 0 {
		return "none"
	}
	s := make([]string, len(me.Roles))
	for i, r := range me.Roles {
		s[i] = r.Role + " on " + r.Tenant
		if r.Tenant == "*" {
			s[i] = r.Role + " on every tenant (*)"
		}
	}
	return strings.Join(s, ", ")
}
