package cli

import (
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/remote"
	"github.com/moatcloud/moat/internal/wire"
)

// masterClient reaches the master: through the operator's ssh when
// MOAT_MASTER or the context in use names one, else on the local socket
// (MOAT_MASTER_SOCKET). A context that cannot be used fails the first
// request, with why. Requests act in the tenant $MOAT_TENANT names, else
// the context's (as secrets are sealed: operatorTenant).
func (a *app) masterClient() *masterapi.Client {
	m, err := remoteMaster()
	tenant := os.Getenv("MOAT_TENANT")
	switch {
	case err != nil:
		return masterapi.NewClient(&http.Client{Transport: failing{err}}, "master")
	case m == nil:
		return masterapi.UnixClient(envOr("MOAT_MASTER_SOCKET", masterapi.DefaultSocket)).InTenant(tenant)
	case tenant != "":
		m.Tenant = tenant
	}
	return masterapi.NewClient(m.HTTP(), "master "+m.Name())
}

// remoteMaster is the master MOAT_MASTER names (a context, "local", or
// USER@HOST[:PORT]), else the context in use; nil for the local socket.
func remoteMaster() (*remote.Master, error) {
	env := os.Getenv("MOAT_MASTER")
	if env == remote.Local {
		return nil, nil
	}
	path, err := remote.DefaultPath()
	if err != nil {
		return nil, err
	}
	cs, err := remote.Load(path)
	if err != nil {
		return nil, err
	}
	name := cs.Current
	if env != "" {
		name = env
	}
	if name == "" {
		return nil, nil
	}
	c, ok := cs.Get(name)
	if !ok {
		// Not a context: a destination.
		c = remote.Context{Name: name, Dest: name}
		if _, err := c.Access(); err != nil {
			return nil, fmt.Errorf("MOAT_MASTER=%s: neither a context in %s nor USER@HOST[:PORT]: %w", env, path, err)
		}
	}
	return remote.NewMaster(c)
}

// errNoContext: the contexts file has no context of that name.
var errNoContext = fmt.Errorf("no such context: %w", errs.ErrNotFound)

// failing is a transport that cannot be used, and says why.
type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &wire.ConnError{Err: f.err}
}

func (a *app) contextCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Masters reached through your own ssh: add, use, ls, rm",
		Long: `A context names a master on another machine, reached through your own
OpenSSH client (~/.ssh/config, ssh-agent, known_hosts and jump hosts apply):
every moat command then runs against it. MOAT_MASTER (a context name,
USER@HOST[:PORT], or "local") overrides the context in use; with neither,
moat uses the master's local socket (MOAT_MASTER_SOCKET). Contexts live in
~/.config/moat/contexts (XDG_CONFIG_HOME). MOAT_SSH_COMMAND replaces "ssh"
(e.g. "ssh -F ./ssh_config").`,
	}
	cmd.AddCommand(a.contextAddCommand(), a.contextUseCommand(), a.contextLsCommand(), a.contextRmCommand(), a.contextKeeperCommand())
	return cmd
}

// contextKeeperCommand is the keeper of a master's ready session
// (remote.KeeperArgs), started in the background by the first command
// that reaches the master through ssh.
func (a *app) contextKeeperCommand() *cobra.Command {
	var m remote.Master
	cmd := &cobra.Command{
		Use:    "keeper --dest DEST --port PORT --control-dir DIR -- SSH...",
		Short:  "Hold a session to a remote master ready for the next command (started by moat itself)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m.SSH = args
			if err := m.Access.Validate(); err != nil {
				return usageError{err}
			}
			return m.RunKeeper()
		},
	}
	cmd.Flags().StringVar(&m.Access.Dest, "dest", "", "USER@HOST or an ssh_config Host")
	cmd.Flags().IntVar(&m.Access.Port, "port", 0, "port (0: ssh's choice)")
	cmd.Flags().StringVar(&m.ControlDir, "control-dir", "", "the shared connections' directory")
	return cmd
}

// editContexts loads the contexts file, lets fn change it, and saves it.
func editContexts(fn func(*remote.Contexts) error) error {
	path, err := remote.DefaultPath()
	if err != nil {
		return err
	}
	cs, err := remote.Load(path)
	if err != nil {
		return err
	}
	if err := fn(&cs); err != nil {
		return err
	}
	return remote.Save(path, cs)
}

func (a *app) contextAddCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:     "add NAME USER@HOST[:PORT] [--tenant T]",
		Short:   "Name a master reached through ssh (its forced command serves the API)",
		Example: "  moat context add prod admin@203.0.113.7\n  moat context add staging ops@staging-master:2222 --tenant web",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := remote.Context{Name: args[0], Dest: args[1], Tenant: tenant}
			if err := c.Check(); err != nil {
				return usageError{err}
			}
			err := editContexts(func(cs *remote.Contexts) error {
				if _, ok := cs.Get(c.Name); ok {
					return usageError{fmt.Errorf("context %q exists (moat context rm %s first)", c.Name, c.Name)}
				}
				cs.List = append(cs.List, c)
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "context %s: %s (use it: moat context use %s)\n", c.Name, c.Dest, c.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant the context's requests act in (default: the master decides)")
	return cmd
}

func (a *app) contextUseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "use NAME",
		Short: `Run commands against a context's master ("local": the local socket)`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			err := editContexts(func(cs *remote.Contexts) error {
				if name == remote.Local {
					cs.Current = ""
					return nil
				}
				if _, ok := cs.Get(name); !ok {
					return fmt.Errorf("context %q: %w (moat context ls lists them)", name, errNoContext)
				}
				cs.Current = name
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "using %s\n", name)
			return nil
		},
	}
}

func (a *app) contextLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List contexts; * marks the one in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := remote.DefaultPath()
			if err != nil {
				return err
			}
			cs, err := remote.Load(path)
			if err != nil {
				return err
			}
			type row struct {
				Name    string `json:"name"`
				Master  string `json:"master"`
				Tenant  string `json:"tenant,omitempty"`
				Current bool   `json:"current"`
			}
			list := []row{{Name: remote.Local, Master: envOr("MOAT_MASTER_SOCKET", masterapi.DefaultSocket), Current: cs.Current == ""}}
			for _, c := range cs.List {
				list = append(list, row{c.Name, c.Dest, c.Tenant, c.Name == cs.Current})
			}
			if a.json {
				return printJSON(a.stdout, list)
			}
			rows := [][]string{{"", "NAME", "MASTER", "TENANT"}}
			for _, r := range list {
				mark := ""
				if r.Current {
					mark = "*"
				}
				rows = append(rows, []string{mark, r.Name, r.Master, orDash(r.Tenant)})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) contextRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a context (the local socket is used if it was in use)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return editContexts(func(cs *remote.Contexts) error {
				for i, c := range cs.List {
					if c.Name == name {
						cs.List = append(cs.List[:i], cs.List[i+1:]...)
						if cs.Current == name {
							cs.Current = ""
						}
						return nil
					}
				}
				return fmt.Errorf("context %q: %w", name, errNoContext)
			})
		},
	}
}
