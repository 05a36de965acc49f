package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/cloudinit"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// metadataURLs are where each cloud serves a server its user data.
var metadataURLs = map[string]string{
	"digitalocean": "http://169.254.169.254/metadata/v1/user-data",
	"hetzner":      "http://169.254.169.254/hetzner/v1/userdata",
}

// firstbootMarker says firstboot ran: it runs once per server.
const firstbootMarker = nodeapi.FirstbootDone

func (a *app) nodeFirstbootCommand() *cobra.Command {
	var file, metadata, root string
	cmd := &cobra.Command{
		Use:   "firstboot [--user-data FILE | --metadata digitalocean|hetzner]",
		Short: "Apply a pool server's user data once, strictly (run by the moat-firstboot unit before sshd)",
		Long: `Read the user data the master rendered (hostname, one-time host key,
gate-pinned authorized keys, peer key) and apply it once. Anything else in
it — commands, other files, a key not pinned to moat gate — is refused,
named, and nothing is changed. The signing policy, the operator's keys and
the secrets key come only from the operator's image.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (file == "") == (metadata == "") {
				return usageError{errors.New("give one of --user-data FILE or --metadata digitalocean|hetzner")}
			}
			marker := filepath.Join(root, firstbootMarker)
			if _, err := os.Stat(marker); err == nil {
				fmt.Fprintf(a.stdout, "firstboot already done (%s)\n", marker)
				return nil
			}
			data, err := readUserData(cmd.Context(), file, metadata)
			if err != nil {
				return err
			}
			d, err := cloudinit.Parse(data)
			if err != nil {
				return fmt.Errorf("firstboot refused the user data, nothing changed: %w: %w", err, errs.ErrInvalid)
			}
			if err := cloudinit.Apply(root, d); err != nil {
				return fmt.Errorf("firstboot: %w", err)
			}
			if root == "/" {
				if err := unix.Sethostname([]byte(d.Hostname)); err != nil {
					return fmt.Errorf("firstboot: set hostname: %w", err)
				}
			}
			if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
				return fmt.Errorf("firstboot: %w", err)
			}
			if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
				return fmt.Errorf("firstboot: %w", err)
			}
			fp, _ := d.Fingerprint()
			fmt.Fprintf(a.stdout, "firstboot: %s, one-time host key %s, %d authorized keys\n", d.Hostname, fp, len(d.AuthorizedKeys))
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "user-data", "", "file holding the user data")
	cmd.Flags().StringVar(&metadata, "metadata", "", "read the user data from this cloud's metadata service: digitalocean or hetzner")
	cmd.Flags().StringVar(&root, "root", "/", "the machine's root directory (tests: the host name is set only for /)")
	cmd.Flags().MarkHidden("root")
	return cmd
}

func readUserData(ctx context.Context, file, metadata string) ([]byte, error) {
	var r io.Reader
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("firstboot: %w", err)
		}
		defer f.Close()
		r = f
	} else {
		url, ok := metadataURLs[metadata]
		if !ok {
			return nil, usageError{fmt.Errorf("--metadata %q: want digitalocean or hetzner", metadata)}
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("firstboot: user data from %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("firstboot: user data from %s: %s", url, resp.Status)
		}
		r = resp.Body
	}
	data, err := io.ReadAll(io.LimitReader(r, cloudinit.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("firstboot: read user data: %w", err)
	}
	return data, nil
}
