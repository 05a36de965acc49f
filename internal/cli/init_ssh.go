package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterhost"
)

// initSSH is moat init's --ssh: operators' logins on the master's host.
type initSSH struct {
	enabled bool
	opts    masterhost.Options
}

func (s *initSSH) flags(f *pflag.FlagSet) {
	f.BoolVar(&s.enabled, "ssh", false, "let operators reach the master over SSH with their own keys: the api user and an sshd drop-in (checked with sshd -t)")
	f.StringVar(&s.opts.User, "api-user", masterhost.DefaultUser, "with --ssh: the unix user operators log in as")
	f.StringVar(&s.opts.DropIn, "sshd-drop-in", masterhost.DefaultDropIn, "with --ssh: the sshd drop-in to write")
	f.StringVar(&s.opts.CAFile, "user-ca-file", masterhost.DefaultCAFile, "with --ssh: where the master writes the trusted CAs (sshd's TrustedUserCAKeys)")
}

// run sets the host up, if asked to.
func (s *initSSH) run(ctx context.Context, a *app) error {
	if !s.enabled {
		return nil
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return err
	}
	s.opts.Moat = bin
	r, err := masterhost.Setup(ctx, s.opts)
	if err != nil {
		return err
	}
	if r.UserCreated {
		fmt.Fprintf(a.stdout, "api user %s created (no password, shell /bin/sh for sshd's forced command)\n", s.opts.User)
	}
	fmt.Fprintf(a.stdout, "sshd drop-in %s: user %s's keys come from moat user, and reach only moat api\n", r.DropIn, s.opts.User)
	if r.Reloaded != "" {
		fmt.Fprintf(a.stdout, "sshd reloaded (%s)\n", r.Reloaded)
	} else {
		fmt.Fprintln(a.stdout, "no running sshd found: it reads the drop-in when it starts")
	}
	return nil
}

// apiFlags are moat master's flags for the api socket.
func apiFlags(f *pflag.FlagSet, cfg *master.Config) {
	f.StringVar(&cfg.APISocket, "api-socket", envOr("MOAT_API_SOCKET", master.DefaultAPISocket), "where moat api (operators' SSH logins) reaches the master; served when the api user exists")
	f.StringVar(&cfg.APIUser, "api-user", master.DefaultAPIUser, "the unix user operators log in as (moat init --ssh)")
	f.StringVar(&cfg.UserCAFile, "user-ca-file", master.DefaultUserCAFile, "where the trusted CAs are written for sshd's TrustedUserCAKeys")
}
