package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/userauth"
)

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Users of the master's API: their SSH keys, certificate principals and roles",
		Long: `Users reach the master over SSH with their own keys (ssh moat@MASTERHOST api,
or the moat CLI with a context), set up on the master's host by moat init --ssh.
A user is SSH public keys, or certificate principals of a trusted CA, and
roles per tenant: admin, deployer, viewer; tenant * is every tenant (admin@*
is a cluster admin). Removing a user, a key or a CA ends their open sessions.`,
	}
	cmd.AddCommand(a.userAddCommand(), a.userLsCommand(), a.userRmCommand(), a.userRoleCommand(),
		a.userKeyCommand(), a.userTrustCACommand(), a.userUntrustCACommand(), a.userCAsCommand())
	return cmd
}

func (a *app) userAddCommand() *cobra.Command {
	var keyFiles, principals, roles []string
	cmd := &cobra.Command{
		Use:   "add NAME [--key FILE]... [--principal P]... [--role ROLE[@TENANT]]...",
		Short: "Add a user with SSH public keys or certificate principals (default: their name)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := masterapi.NewUser{Name: args[0], Principals: principals}
			for _, f := range keyFiles {
				keys, err := a.readKeys(f)
				if err != nil {
					return err
				}
				req.Keys = append(req.Keys, keys...)
			}
			for _, r := range roles {
				role, tenant, err := userauth.ParseRoleTenant(r)
				if err != nil {
					return usageError{err}
				}
				req.Roles = append(req.Roles, masterapi.Role{Role: role, Tenant: tenant})
			}
			u, err := a.masterClient().AddUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printUsers([]masterapi.User{u})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keyFiles, "key", nil, "a file of SSH public keys, one a line (- for stdin)")
	f.StringArrayVar(&principals, "principal", nil, "a certificate principal that names this user (with moat user trust-ca)")
	f.StringArrayVar(&roles, "role", nil, "a role: admin, deployer or viewer, in a tenant (@TENANT; default @default, @* every tenant)")
	return cmd
}

// readKeys reads public keys, one a line, from a file (- for stdin).
func (a *app) readKeys(file string) ([]string, error) {
	var r io.Reader = a.stdin
	if file != "-" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	var keys []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(keys) == 0 {
		return nil, usageError{fmt.Errorf("%s: no public key in it", file)}
	}
	return keys, nil
}

func (a *app) userLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List users: keys, principals, roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			users, err := a.masterClient().Users(cmd.Context())
			if err != nil {
				return err
			}
			return a.printUsers(users)
		},
	}
}

func (a *app) printUsers(users []masterapi.User) error {
	if a.json {
		return printJSON(a.stdout, users)
	}
	rows := [][]string{{"USER", "KEYS", "PRINCIPALS", "ROLES", "AGE"}}
	now := time.Now()
	for _, u := range users {
		var keys, roles []string
		for _, k := range u.Keys {
			keys = append(keys, k.Fingerprint)
		}
		for _, r := range u.Roles {
			roles = append(roles, r.Role+"@"+r.Tenant)
		}
		rows = append(rows, []string{u.Name, orDash(strings.Join(keys, ",")), orDash(strings.Join(u.Principals, ",")), orDash(strings.Join(roles, ",")), ago(u.Created, now)})
	}
	return table(a.stdout, rows)
}

func (a *app) userRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a user; their open sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.masterClient().RemoveUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "user %s removed\n", args[0])
			return nil
		},
	}
}

func (a *app) userKeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Add or remove a user's SSH keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "add NAME FILE",
		Short: "Give a user the public keys in FILE (- for stdin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := a.readKeys(args[1])
			if err != nil {
				return err
			}
			var u masterapi.User
			for _, k := range keys {
				if u, err = a.masterClient().AddUserKey(cmd.Context(), args[0], k); err != nil {
					return err
				}
			}
			return a.printUsers([]masterapi.User{u})
		},
	}, &cobra.Command{
		Use:   "rm NAME FINGERPRINT",
		Short: "Remove one of a user's keys (SHA256:...); sessions opened with it end",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.masterClient().RemoveUserKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "key %s of %s removed\n", args[1], args[0])
			return nil
		},
	})
	return cmd
}

func (a *app) userRoleCommand() *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "role NAME ROLE[@TENANT] | role NAME --rm @TENANT",
		Short: "Give a user a role in a tenant (replacing theirs there), or take it away",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.masterClient()
			if remove {
				tenant := strings.TrimPrefix(args[1], "@")
				if _, t, ok := strings.Cut(args[1], "@"); ok {
					tenant = t
				}
				if err := c.RemoveRole(cmd.Context(), args[0], tenant); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s has no role in tenant %s now\n", args[0], tenant)
				return nil
			}
			role, tenant, err := userauth.ParseRoleTenant(args[1])
			if err != nil {
				return usageError{err}
			}
			u, err := c.SetRole(cmd.Context(), args[0], masterapi.Role{Role: role, Tenant: tenant})
			if err != nil {
				return err
			}
			return a.printUsers([]masterapi.User{u})
		},
	}
	cmd.Flags().BoolVar(&remove, "rm", false, "remove the user's role in the tenant")
	return cmd
}

func (a *app) userTrustCACommand() *cobra.Command {
	return &cobra.Command{
		Use:   "trust-ca NAME CA.pub",
		Short: "Trust a certificate authority: its user certificates' principals name users",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := a.readKeys(args[1])
			if err != nil {
				return err
			}
			if len(keys) != 1 {
				return usageError{fmt.Errorf("%s: want one public key, found %d", args[1], len(keys))}
			}
			ca, err := a.masterClient().TrustCA(cmd.Context(), masterapi.TrustCARequest{Name: args[0], Key: keys[0]})
			if err != nil {
				return err
			}
			return a.printCAs([]masterapi.CA{ca})
		},
	}
}

func (a *app) userUntrustCACommand() *cobra.Command {
	return &cobra.Command{
		Use:   "untrust-ca NAME",
		Short: "Stop trusting a certificate authority; sessions opened with its certificates end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.masterClient().UntrustCA(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "CA %s no longer trusted\n", args[0])
			return nil
		},
	}
}

func (a *app) userCAsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cas",
		Short: "List the trusted certificate authorities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cas, err := a.masterClient().CAs(cmd.Context())
			if err != nil {
				return err
			}
			return a.printCAs(cas)
		},
	}
}

func (a *app) printCAs(cas []masterapi.CA) error {
	if a.json {
		return printJSON(a.stdout, cas)
	}
	rows := [][]string{{"CA", "FINGERPRINT", "AGE"}}
	now := time.Now()
	for _, c := range cas {
		rows = append(rows, []string{c.Name, c.Fingerprint, ago(c.Added, now)})
	}
	return table(a.stdout, rows)
}
