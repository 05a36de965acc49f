package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/provider/clouds"
)

// tokenEnv is where moat pool image finds a provider's token by default:
// the variables the providers' own tools read.
var tokenEnv = map[string][]string{
	"digitalocean": {"DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"},
	"hetzner":      {"HCLOUD_TOKEN"},
}

// imageTarget is where a pool's image is built: the pool's provider and
// first type and region, from the master, each replaced by a flag given.
type imageTarget struct {
	provider, endpoint, typ, region, localDir, cluster string
}

func (a *app) poolImageCommand() *cobra.Command {
	var flags imageTarget
	var base, tokenFile, signersFile, secretsKeyFile, identity, binary string
	var noSecretsKey, allowUnsigned, noHarden bool
	var bootTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "image [flags] POOL",
		Short: "Build a pool's image from your machine, with your credentials",
		Long: `Build the image a pool's servers boot, on your machine with your own
provider token (--token-file, or $DIGITALOCEAN_TOKEN / $HCLOUD_TOKEN; never
the master's): everything a pool node trusts comes from you, not from the
master.

It creates a builder server at the pool's provider (its first server type
and region, from the master, or --type and --region) from the base image,
with user data made here: a one-time host key, which ssh checks, and your
public key (-i KEY: KEY.pub). Over your own ssh it installs this moat
binary, your allowed signers (nodes run only images signed by them, unless
--allow-unsigned), the cluster's secrets key (unless --no-secrets-key), the
node daemon and moat-firstboot units, hardens sshd, turns cloud-init's own
handling of user data off, and seals the machine (no host keys, no machine
id, no logs). It snapshots it, destroys the builder whatever happens, prints
the image's id and records it in the pool (moat pool set POOL --image ID).

Each server the master creates from the image gets only its hostname, a
one-time host key, and the master's and peer's keys pinned to moat gate;
moat-firstboot refuses anything else. Your key stays in the image: your own
root login to every pool node.

The master says only where to build; your token goes to the provider's
own API, or to the endpoint you give with --endpoint, never to one the
master names.

Whoever holds the provider's token can read a server's disk (rescue
systems, snapshots), the secrets key included: --no-secrets-key keeps it
out, and apps with secrets off the pool.`,
		Example: "  moat pool image web --allowed-signers ~/.config/moat/allowed_signers\n" +
			"  moat pool image web --token-file ~/.config/moat/hcloud-token --no-secrets-key\n" +
			"  moat pool image web --provider hetzner --type cx22 --region fsn1   # the master unreachable",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pool := args[0]
			c := a.masterClient()
			target, known, err := imagePool(ctx, c, pool, flags, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			if !known && !a.json {
				fmt.Fprintf(a.stderr, "the master does not answer for pool %s: building from the flags; the image will not be recorded\n", pool)
			}
			token, err := operatorToken(target.provider, tokenFile)
			if err != nil {
				return usageError{err}
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			p, err := clouds.Open(target.provider, token, target.endpoint, target.localDir, self)
			if err != nil {
				return err
			}
			opts := enroll.BuildOptions{Provider: p, Cluster: target.cluster, Pool: pool, Base: base, Type: target.typ, Region: target.region,
				BootTimeout: bootTimeout}
			if identity, opts.OperatorKey, err = operatorKey(identity); err != nil {
				return usageError{err}
			}
			opts.Image.Access.Identity = identity
			opts.Image.Binary, opts.Image.Metadata = binary, target.provider
			opts.Image.RequireSigned, opts.Image.HardenSSHD = !allowUnsigned, !noHarden
			if signersFile != "" {
				if opts.Image.AllowedSigners, err = os.ReadFile(signersFile); err != nil {
					return usageError{fmt.Errorf("--allowed-signers: %w", err)}
				}
			}
			if !noSecretsKey {
				if opts.Image.SecretsKey, err = enrolSecretsKey(secretsKeyFile); err != nil {
					return err
				}
			}
			if !a.json {
				opts.Log = func(step string) { fmt.Fprintln(a.stderr, "  "+step) }
				opts.Image.Log = opts.Log
				opts.Image.Progress = func(total int64) io.Writer { return newProgress(a.stderr, total, "upload moat") }
			}
			image, err := enroll.BuildImage(ctx, opts)
			if err != nil {
				return fmt.Errorf("build pool %s's image: %w", pool, err)
			}
			recorded := false
			if known {
				if _, err := c.SetPool(ctx, masterapi.PoolSpec{Name: pool, Image: &image}); err != nil {
					fmt.Fprintf(a.stderr, "the image is built but not recorded in pool %s (%v): moat pool set %s --image %s\n", pool, err, pool, image)
				} else {
					recorded = true
				}
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"pool": pool, "provider": target.provider, "image": image, "recorded": recorded})
			}
			fmt.Fprintln(a.stdout, image)
			if recorded {
				fmt.Fprintf(a.stderr, "pool %s's servers now boot image %s\n", pool, image)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "debian-12", "the provider's image the builder starts from")
	f.StringVar(&tokenFile, "token-file", "", "file holding your provider API token (default: $DIGITALOCEAN_TOKEN or $HCLOUD_TOKEN)")
	f.BoolVar(&noSecretsKey, "no-secrets-key", false, "leave the cluster's secrets key out of the image: its nodes cannot open secrets")
	f.StringVar(&secretsKeyFile, "secrets-key", "", "the cluster's secrets key to install (default: yours, $MOAT_SECRETS_KEY or ~/.config/moat/secrets.key, if it exists)")
	f.StringVar(&signersFile, "allowed-signers", os.Getenv("MOAT_ALLOWED_SIGNERS"), "who may sign images pool nodes run (OpenSSH allowed_signers file; default $MOAT_ALLOWED_SIGNERS)")
	f.BoolVar(&allowUnsigned, "allow-unsigned", false, "let pool nodes run unsigned images")
	f.BoolVar(&noHarden, "no-harden-sshd", false, "leave the image's sshd settings as they are")
	f.StringVarP(&identity, "identity", "i", "", "your SSH private key: its .pub is your login to the builder and every pool node (default: ~/.ssh/id_ed25519, id_ecdsa or id_rsa)")
	f.StringVar(&binary, "binary", "", "moat binary to install, e.g. one built for arm64 (default: this one)")
	f.DurationVar(&bootTimeout, "boot-timeout", 10*time.Minute, "how long to wait for the builder's sshd")
	f.StringVar(&flags.provider, "provider", "", "the pool's provider (default: the master's word): local, digitalocean or hetzner")
	f.StringVar(&flags.endpoint, "endpoint", "", "the provider API's base URL, when not the provider's own")
	f.StringVar(&flags.typ, "type", "", "the builder's server type (default: the pool's first)")
	f.StringVar(&flags.region, "region", "", "the builder's region (default: the pool's first)")
	f.StringVar(&flags.localDir, "local-dir", "", "a local pool's state directory (default: the master's word)")
	return cmd
}

// imagePool is where pool's image is built: the master's description of
// the pool, each flag given replacing its value. Without the master's
// answer the flags must name the provider and a type; known says whether
// the master knows the pool (so the image can be recorded). The API
// endpoint is never the master's word: the operator's token is sent
// there, so a pool with an endpoint of its own needs --endpoint.
func imagePool(ctx context.Context, c *masterapi.Client, pool string, flags imageTarget, changed func(string) bool) (imageTarget, bool, error) {
	t := imageTarget{}
	known, endpoint := false, ""
	pools, err := c.Pools(ctx)
	if err == nil {
		for _, p := range pools {
			if p.Name != pool {
				continue
			}
			known = true
			// Not the endpoint: the operator's token goes there, and
			// only the operator says where that is (see below).
			t.provider, t.localDir, t.cluster = p.Provider, p.LocalDir, p.Cluster
			endpoint = p.Endpoint
			if len(p.Types) > 0 {
				t.typ = p.Types[0]
			}
			if len(p.Regions) > 0 {
				t.region = p.Regions[0]
			}
		}
		if !known && !changed("provider") {
			return t, false, fmt.Errorf("the master has no pool %s (moat pool add %s --provider ...): %w", pool, pool, errs.ErrNotFound)
		}
	} else if !changed("provider") {
		return t, false, fmt.Errorf("ask the master for pool %s (or give --provider, --type and --region): %w", pool, err)
	}
	for _, f := range []struct {
		name  string
		value string
		to    *string
	}{{"provider", flags.provider, &t.provider}, {"endpoint", flags.endpoint, &t.endpoint}, {"type", flags.typ, &t.typ},
		{"region", flags.region, &t.region}, {"local-dir", flags.localDir, &t.localDir}} {
		if changed(f.name) {
			*f.to = f.value
		}
	}
	switch {
	case endpoint != "" && !changed("endpoint"):
		return t, known, usageError{fmt.Errorf("the master says pool %s's provider API is at %s: your token goes only where you say, give --endpoint %s to send it there", pool, endpoint, endpoint)}
	case t.provider == "static":
		return t, known, usageError{fmt.Errorf("pool %s is static: its machines are yours, enrolled with moat node add", pool)}
	case t.typ == "":
		return t, known, usageError{fmt.Errorf("pool %s has no server type: give --type", pool)}
	}
	return t, known, nil
}

// operatorToken is the operator's API token for a provider: from the
// file, else the provider's usual environment variables. The local
// provider needs none.
func operatorToken(kind, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	vars, ok := tokenEnv[kind]
	if !ok {
		return "", nil
	}
	for _, v := range vars {
		if t := strings.TrimSpace(os.Getenv(v)); t != "" {
			return t, nil
		}
	}
	return "", fmt.Errorf("no %s API token: give --token-file or set $%s (your own token: the master's is never used here)", kind, vars[0])
}

// operatorKey is the operator's private key file and its public line:
// the given one, or the first of ssh's default keys that has a .pub.
func operatorKey(identity string) (string, string, error) {
	candidates := []string{identity}
	if identity == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", err
		}
		candidates = nil
		for _, k := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			candidates = append(candidates, filepath.Join(home, ".ssh", k))
		}
	}
	for _, k := range candidates {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			if identity != "" {
				return "", "", fmt.Errorf("-i %s: its public key: %w", k, err)
			}
			continue
		}
		line := strings.TrimSpace(string(pub))
		if _, err := enroll.ParseOperatorKey(line); err != nil {
			return "", "", fmt.Errorf("%s.pub: %w", k, err)
		}
		return k, line, nil
	}
	return "", "", errors.New("no SSH key of yours found (~/.ssh/id_ed25519 and the like): give -i KEY (KEY.pub beside it)")
}
