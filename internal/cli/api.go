package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/userauth"
)

// apiSocket is where moat api finds the master on its host.
func apiSocket() string { return envOr("MOAT_API_SOCKET", master.DefaultAPISocket) }

func (a *app) apiCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "api [--user NAME]",
		Short: "The master host's forced command: an operator's SSH session as the master's API",
		Long: `Run by sshd on the master's host for operators' keys (moat init --ssh sets
it up, moat user add adds keys): it tells the master, on its api socket,
which key or certificate the session authenticated with (SSH_USER_AUTH),
then joins the session's stdin and stdout to the master's HTTP API. The
master finds the user from that key itself. Nothing else is reachable:
any command but "api" is refused.

  ssh moat@MASTERHOST api     # one HTTP connection to the master, as you`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.apiRelay(cmd.Context(), user)
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user sshd's key line names (the master checks it against the key)")
	cmd.AddCommand(a.apiLookupCommand(userauth.KindKeys, "AuthorizedKeysCommand: the authorized_keys line of a user's key"),
		a.apiLookupCommand(userauth.KindPrincipals, "AuthorizedPrincipalsCommand: the principals of a certificate that name a user"))
	return cmd
}

// apiRelay is the forced command: the preamble, the master's verdict,
// then bytes both ways until the master closes.
func (a *app) apiRelay(ctx context.Context, user string) error {
	// The only command a user key runs is the api: a shell command, scp,
	// sftp (a subsystem) land here as SSH_ORIGINAL_COMMAND and are refused.
	if oc := strings.TrimSpace(os.Getenv("SSH_ORIGINAL_COMMAND")); oc != "" && oc != "api" {
		return fmt.Errorf("this key reaches only the moat API (ssh HOST api), not %q: %w", firstWord(oc), errForbiddenCommand)
	}
	authFile := os.Getenv("SSH_USER_AUTH")
	if authFile == "" {
		return errors.New("SSH_USER_AUTH is not set: sshd must run moat api with ExposeAuthInfo yes (moat init --ssh)")
	}
	auth, err := os.ReadFile(authFile)
	if err != nil {
		return fmt.Errorf("read SSH_USER_AUTH: %w", err)
	}
	conn, err := net.Dial("unix", apiSocket())
	if err != nil {
		return fmt.Errorf("reach the master: %w", err)
	}
	defer conn.Close()
	p := userauth.Preamble{Kind: userauth.KindSession, User: user, Auth: string(auth), Client: os.Getenv("SSH_CONNECTION")}
	if err := userauth.WritePreamble(conn, p); err != nil {
		return fmt.Errorf("reach the master: %w", err)
	}
	br := bufio.NewReader(conn)
	if err := userauth.ReadVerdict(br); err != nil {
		return err
	}
	out := a.stdout.unbuffered()
	go func() {
		// The client's end of input is the master's too (a dial's EOF).
		io.Copy(conn, a.stdin)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	// The master closing (the response done, the user removed) ends the
	// session, whatever the client still sends.
	_, err = io.Copy(out, br)
	return err
}

var errForbiddenCommand = errors.New("refused")

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	if len(w) > 40 {
		w = w[:40]
	}
	return w
}

// apiLookupCommand is `moat api keys|principals USER TYPE BASE64`, run by
// sshd as the api user (%u %t %k): it prints the lines for the users the
// master says the key or certificate may log in as, and nothing for one it
// does not know.
func (a *app) apiLookupCommand(kind, short string) *cobra.Command {
	return &cobra.Command{
		Use:   kind + " USER TYPE KEY",
		Short: short,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			ans, err := apiLookup(cmd.Context(), kind, args[1]+" "+args[2])
			if err != nil {
				return err
			}
			var b strings.Builder
			for _, g := range ans.Grants {
				if userauth.ValidName(g.User) != nil {
					continue
				}
				if kind == userauth.KindKeys {
					b.WriteString(userauth.AuthorizedLine(bin, g.User, args[1]+" "+args[2]) + "\n")
				} else if userauth.ValidPrincipal(g.Principal) == nil {
					b.WriteString(userauth.PrincipalLine(bin, g.User, g.Principal) + "\n")
				}
			}
			_, err = io.WriteString(a.stdout, b.String())
			return err
		},
	}
}

// apiLookup asks the master on its api socket.
func apiLookup(ctx context.Context, kind, key string) (userauth.Answer, error) {
	var ans userauth.Answer
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", apiSocket())
	if err != nil {
		return ans, fmt.Errorf("reach the master: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := userauth.WritePreamble(conn, userauth.Preamble{Kind: kind, Key: key}); err != nil {
		return ans, err
	}
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&ans); err != nil {
		return ans, fmt.Errorf("the master's answer: %w", err)
	}
	if ans.Error != "" {
		return ans, fmt.Errorf("the master: %s", ans.Error)
	}
	return ans, nil
}
