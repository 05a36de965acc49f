package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/moatcloud/moat/internal/sign"
)

func (a *app) imageSignCommand() *cobra.Command {
	var keyPath, sigPath string
	cmd := &cobra.Command{
		Use:   "sign IMAGE (--key KEY | --signature FILE)",
		Short: "Sign an image in the master's store, so that nodes run it",
		Long: `Sign an image with an SSH key: an SSH signature (OpenSSH's sshsig,
namespace moat-image) over the image's manifest digest, made here, with
a key the master never sees. Nodes run an image only when a key in their
allowed signers file (installed by moat node add --allowed-signers) signed
it.

--key takes a private key file; an encrypted one is used through
ssh-agent (ssh-add it first). OpenSSH can make the signature too:

  printf %s sha256:<digest> > digest
  ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n moat-image digest
  moat image sign IMAGE --signature digest.sig`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (keyPath == "") == (sigPath == "") {
				return usageError{errors.New("give --key KEY or --signature FILE")}
			}
			c := a.masterClient()
			img, err := c.Image(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var armored []byte
			if sigPath != "" {
				if armored, err = os.ReadFile(sigPath); err != nil {
					return err
				}
			} else {
				signer, err := loadSigningKey(keyPath)
				if err != nil {
					return err
				}
				if armored, err = sign.Sign(signer, digest.Digest(img.Digest)); err != nil {
					return err
				}
			}
			signed, err := c.AddSignature(cmd.Context(), args[0], armored)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, signed)
			}
			fmt.Fprintf(a.stdout, "%s %s signed by %s\n", orDash(signed.Name), shortDigest(signed.Digest), strings.Join(signed.Signers, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key to sign with (encrypted: through ssh-agent)")
	cmd.Flags().StringVar(&sigPath, "signature", "", "attach a signature made elsewhere (ssh-keygen -Y sign -n moat-image)")
	return cmd
}

// loadSigningKey reads a private key, or, when it is encrypted (or only
// its .pub is given), finds the key in ssh-agent.
func loadSigningKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return signer, nil
	}
	var pub ssh.PublicKey
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing) && missing.PublicKey != nil:
		pub = missing.PublicKey
	default:
		k, _, _, _, perr := ssh.ParseAuthorizedKey(b)
		if perr != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		pub = k
	}
	return agentSigner(pub, path)
}

func agentSigner(pub ssh.PublicKey, path string) (ssh.Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, fmt.Errorf("signing key %s is encrypted and no ssh-agent runs (SSH_AUTH_SOCK): start one and ssh-add the key, or sign with ssh-keygen -Y sign and pass --signature", path)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	for _, s := range signers {
		if ssh.FingerprintSHA256(s.PublicKey()) == ssh.FingerprintSHA256(pub) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("signing key %s (%s) is not in ssh-agent: ssh-add it", path, ssh.FingerprintSHA256(pub))
}
