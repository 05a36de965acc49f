package cli

import (
	"context"
	"fmt"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
)

const secretsKeyNodePath = nodeapi.SecretsKey

func (a *app) secretRotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Replace the cluster's secrets key, re-encrypting every secret here",
		Long: `Replace the cluster's secrets key. On this machine: a new key is made;
every node gets a key file holding the new key and the old one, over your
own SSH (as moat node add installed it), so nodes open both; every secret's
envelope is fetched from the master, opened here with the old key, checked
to be what the master says it is, sealed to the new key with the same
binding and version, and stored back, one app at a time. Nothing restarts.
Your key file then seals with the new key and still opens with the old;
the next rotation drops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			keys, path, err := readSecretsKey()
			if err != nil {
				return err
			}
			mc := a.masterClient()
			nodes, err := mc.Nodes(ctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Operator.Dest == "" {
					return fmt.Errorf("node %s: the master has no record of how you reach it over SSH (enrol it with moat node add): %w", n.Name, errs.ErrUnavailable)
				}
			}
			next, err := age.GenerateX25519Identity()
			if err != nil {
				return err
			}
			rotated := keys.Rotated(next)
			// First remembered beside the old one, which still seals: an
			// interrupted rotation loses nothing.
			if err := writeSecretsKey(path, append(secret.Keys{keys.Sealing(), next}, keys[1:]...)); err != nil {
				return err
			}
			for _, n := range nodes {
				if err := a.installNodeKey(ctx, n, rotated); err != nil {
					return err
				}
			}
			count, err := reseal(ctx, mc, keys, next)
			if err != nil {
				return err
			}
			if err := writeSecretsKey(path, rotated); err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"recipient": rotated.Recipient(), "nodes": len(nodes), "secrets": count})
			}
			fmt.Fprintf(a.stdout, "secrets key rotated: %d nodes hold the new key, %d secrets re-encrypted to %s\n", len(nodes), count, rotated.Recipient())
			return nil
		},
	}
}

// installNodeKey writes the key file on one node over the operator's own
// SSH.
func (a *app) installNodeKey(ctx context.Context, n masterapi.Node, keys secret.Keys) error {
	var errOut strings.Builder
	code, err := enroll.Exec(ctx, inventory.Access(n.Operator), nil, []string{"secret", "install-key"}, strings.NewReader(string(keys.Marshal())), &errOut, &errOut)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(errOut.String()))
	}
	if err != nil {
		return fmt.Errorf("install the new secrets key on node %s: %w", n.Name, err)
	}
	return nil
}

// A request to store re-encrypted envelopes stays well under the 1 MiB a
// request may carry (base64 adds a third).
const resealBatchBytes = 512 << 10

// reseal re-encrypts every envelope the master holds to next, app by app
// (in batches of resealBatchBytes: an app's many versions may not fit one
// request; nodes open both keys, so a rotation cut short loses nothing).
// Each is opened here and must be bound to what the master files it
// under: a master that swapped envelopes gets an error, not a laundered
// secret.
func reseal(ctx context.Context, mc *masterapi.Client, keys secret.Keys, next *age.X25519Identity) (int, error) {
	envs, err := mc.SecretEnvelopes(ctx)
	if err != nil {
		return 0, err
	}
	var batches [][]masterapi.SecretEnvelope
	last, size := "", 0
	for _, e := range envs {
		b, value, err := secret.Open(e.Envelope, keys)
		if err != nil {
			return 0, fmt.Errorf("secret %s of %s/%s: %w", e.Name, e.Tenant, e.App, err)
		}
		want := secret.Binding{Tenant: e.Tenant, App: e.App, Name: e.Name, Version: e.Version}
		if b != want {
			clear(value)
			return 0, fmt.Errorf("the master files %s under %s: refusing to re-encrypt it: %w", b, want, errs.ErrConflict)
		}
		e.Envelope, err = secret.Seal(b, value, next)
		clear(value)
		if err != nil {
			return 0, err
		}
		// The master lists them by tenant and app.
		if k := e.Tenant + "/" + e.App; k != last || size+len(e.Envelope) > resealBatchBytes {
			batches, last, size = append(batches, nil), k, 0
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], e)
		size += len(e.Envelope)
	}
	for _, b := range batches {
		if err := mc.ReplaceSecretEnvelopes(ctx, b); err != nil {
			return 0, fmt.Errorf("store the re-encrypted secrets of %s/%s: %w", b[0].Tenant, b[0].App, err)
		}
	}
	return len(envs), nil
}
