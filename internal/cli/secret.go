package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image/build"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/secret"
)

func (a *app) secretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Apps' secrets, encrypted on this machine to the cluster's secrets key",
		Long: `Secrets are encrypted here, on your machine, with age to the cluster's
secrets key, whose private half only you ($MOAT_SECRETS_KEY, or
~/.config/moat/secrets.key) and the nodes (/etc/moat/secrets.key,
installed by moat node add over your own SSH) hold. The master stores and
ships ciphertext it cannot open. Each envelope is bound to its tenant, app,
name and version: a node mounts it only into containers whose signed image
declares that app (moat image build --app TENANT/APP).`,
	}
	cmd.AddCommand(a.secretInitCommand(), a.secretSetCommand(), a.secretLsCommand(), a.secretRmCommand(), a.secretRotateCommand(), a.secretInstallKeyCommand())
	return cmd
}

// secretsKeyPath is the operator's secrets key file.
func secretsKeyPath() string {
	if p := os.Getenv("MOAT_SECRETS_KEY"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = filepath.Join(os.Getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "moat", "secrets.key")
}

// readSecretsKey reads the operator's key file, refusing one others can
// read.
func readSecretsKey() (secret.Keys, string, error) {
	path := secretsKeyPath()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, fmt.Errorf("no secrets key at %s: make one with moat secret init (or set MOAT_SECRETS_KEY): %w", path, errs.ErrNotFound)
	}
	if err != nil {
		return nil, path, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, path, fmt.Errorf("%s is readable by others (%v): chmod 600 %s: %w", path, fi.Mode().Perm(), path, errs.ErrInvalid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	keys, err := secret.ParseKeys(b)
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("%s holds no key", path)
	}
	return keys, path, err
}

// writeSecretsKey replaces the key file, 0600, in a 0700 directory.
func writeSecretsKey(path string, keys secret.Keys) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, keys.Marshal(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (a *app) secretInitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Make the cluster's secrets key on this machine (then enrol nodes with it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := secretsKeyPath()
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: the cluster's secrets key is made once (moat secret rotate replaces it): %w", path, errs.ErrConflict)
			}
			keys, err := secret.GenerateKeys()
			if err != nil {
				return err
			}
			if err := writeSecretsKey(path, keys); err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]string{"path": path, "recipient": keys.Recipient()})
			}
			fmt.Fprintf(a.stdout, "secrets key %s (public key %s)\nmoat node add installs it on nodes; run it again for nodes already enrolled\n", path, keys.Recipient())
			return nil
		},
	}
}

func (a *app) secretSetCommand() *cobra.Command {
	var fromFile, tenant string
	cmd := &cobra.Command{
		Use:   "set APP NAME",
		Short: "Encrypt a secret here (from stdin or --from-file) and store its next version",
		Long: `Encrypt a secret's value on this machine to the cluster's secrets key and
store it as the secret's next version. The value is read from stdin, or
from --from-file, byte for byte. If the app's spec names the secret, a new
revision runs it: replicas roll (reload: restart, the default) or get the
new file in place and a signal (reload: signal).`,
		Example: "  printf %s \"$DB_PASSWORD\" | moat secret set web db_password\n  moat secret set web tls --from-file server.pem",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, name := args[0], args[1]
			tenant := operatorTenant(tenant)
			if err := (secret.Binding{Tenant: tenant, App: app, Name: name, Version: 1}).Validate(); err != nil {
				return usageError{err}
			}
			keys, _, err := readSecretsKey()
			if err != nil {
				return err
			}
			value, err := a.secretValue(fromFile)
			if err != nil {
				return err
			}
			defer clear(value)
			mc := a.masterClient()
			ctx := cmd.Context()
			version, err := nextVersion(ctx, mc, app, name)
			if err != nil {
				return err
			}
			b := secret.Binding{Tenant: tenant, App: app, Name: name, Version: version}
			env, err := secret.Seal(b, value, keys.Sealing())
			if err != nil {
				return usageError{err}
			}
			s, err := mc.PutSecret(ctx, app, name, masterapi.PutSecretRequest{Tenant: tenant, Version: version, Envelope: env})
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, s)
			}
			fmt.Fprintf(a.stdout, "secret %s of %s: version %d\n", name, app, s.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from FILE instead of stdin")
	cmd.Flags().StringVar(&tenant, "tenant", "", "the app's tenant, which the secret is bound to (default: $MOAT_TENANT, else your context's, else default)")
	return cmd
}

// secretValue reads the value, refusing one larger than a secret holds.
func (a *app) secretValue(fromFile string) ([]byte, error) {
	var r io.Reader = a.stdin
	if fromFile != "" {
		f, err := os.Open(fromFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--from-file: %w", err)}
		}
		defer f.Close()
		r = f
	}
	value, err := io.ReadAll(io.LimitReader(r, secret.MaxValue+1))
	if err != nil {
		return nil, err
	}
	if len(value) > secret.MaxValue {
		return nil, usageError{fmt.Errorf("the value is over %d bytes, more than a secret holds", secret.MaxValue)}
	}
	return value, nil
}

// nextVersion is one more than the secret's stored version. The master
// refuses a version that is not (someone set it meanwhile), so a lie here
// costs a retry, never a value.
func nextVersion(ctx context.Context, mc *masterapi.Client, app, name string) (int, error) {
	ss, err := mc.Secrets(ctx, app)
	if err != nil {
		return 0, err
	}
	for _, s := range ss {
		if s.Name == name {
			return s.Version + 1, nil
		}
	}
	return 1, nil
}

func (a *app) secretLsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ls APP",
		Short: "List an app's secrets: names, versions, dates (never values)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ss, err := a.masterClient().Secrets(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ss)
			}
			rows := [][]string{{"NAME", "VERSION", "CREATED", "UPDATED"}}
			for _, s := range ss {
				rows = append(rows, []string{s.Name, strconv.Itoa(s.Version), ago(s.Created, time.Now()), ago(s.Updated, time.Now())})
			}
			return table(a.stdout, rows)
		},
	}
}

func (a *app) secretRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm APP NAME",
		Short: "Delete a secret the app's spec no longer names",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.masterClient().RemoveSecret(cmd.Context(), args[0], args[1])
		},
	}
}

// secretInstallKeyCommand runs on a node, as root, over the operator's
// own SSH (moat secret rotate): it replaces the node's secrets key file
// with the one on stdin.
func (a *app) secretInstallKeyCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:    "install-key",
		Short:  "Replace this node's secrets key with the key file on stdin (moat secret rotate runs it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
			if err != nil {
				return err
			}
			keys, err := secret.ParseKeys(b)
			if err != nil || len(keys) == 0 {
				return fmt.Errorf("stdin is not a secrets key file: %v: %w", err, errs.ErrInvalid)
			}
			if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, b) {
				return nil
			}
			return writeSecretsKey(path, keys)
		},
	}
	cmd.Flags().StringVar(&path, "path", secretsKeyNodePath, "the node's secrets key file")
	return cmd
}

// setAppLabel declares, in the image's config, the app it is.
func setAppLabel(ref string, opts *build.Options) error {
	if ref == "" {
		return nil
	}
	app, err := secret.ParseAppRef(ref)
	if err != nil {
		return fmt.Errorf("--app %w", err)
	}
	if opts.Labels == nil {
		opts.Labels = map[string]string{}
	}
	opts.Labels[secret.AppLabel] = app
	return nil
}

// enrolSecretsKey is the key file node add installs: the one given, else
// the operator's own if there is one (a cluster without secrets has none).
func enrolSecretsKey(given string) ([]byte, error) {
	path := given
	if path == "" {
		path = secretsKeyPath()
		if _, err := os.Stat(path); err != nil {
			return nil, nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--secrets-key: %w", err)}
	}
	if _, err := secret.ParseKeys(b); err != nil {
		return nil, usageError{fmt.Errorf("--secrets-key %s: %w", path, err)}
	}
	return b, nil
}

// operatorTenant is the tenant a secret is sealed for: from the operator's
// side (the flag, $MOAT_TENANT, the context in use), never the master's
// word, which could bind the secret to another tenant's app of the same
// name. The master refuses a request acting in another tenant.
func operatorTenant(flag string) string {
	if flag != "" {
		return flag
	}
	if t := os.Getenv("MOAT_TENANT"); t != "" {
		return t
	}
	if m, err := remoteMaster(); err == nil && m != nil && m.Tenant != "" {
		return m.Tenant
	}
	return secret.DefaultTenant
}
