package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/image/build"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Build, inspect and lint images"}
	cmd.AddCommand(a.imageBuildCommand(), a.imageLintCommand(), a.imageImportCommand(), a.imageLsCommand(), a.imageInspectCommand(), a.imageRmCommand(), a.imageSignCommand(), a.imageGCCommand())
	return cmd
}

// The host's CA bundle, for --ca-certs: Debian's path first.
var caBundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

func (a *app) imageBuildCommand() *cobra.Command {
	var opts build.Options
	var out, entrypoint, chown string
	var adds, labels, caps []string
	var caCerts bool
	cmd := &cobra.Command{
		Use:   "build [-o FILE] --add SRC:DST[:MODE]... --entrypoint PATH [flags]",
		Short: "Build a minimal, reproducible OCI image from files",
		Long: `Build a minimal OCI image (an OCI layout tar) from files: typically one
static binary, its config and CA certificates. No base image, no shell.
The same inputs give the same digest: fixed mtimes (SOURCE_DATE_EPOCH or
the epoch), sorted entries, owner 0:0 unless --chown. With -o the image is
written to FILE; without, it goes into the master's store.

Privileges beyond moat's strict defaults (a capability, root, a writable
root filesystem, ...) are declared here, in the image's config, which the
release signature covers: nodes grant a container only what its signed
image declares (or what the node's operator allows), whatever the master
asks for.`,
		Example: "  moat image build -o web.tar --add ./web:/web --entrypoint /web --ca-certs --port 8080 --name web:1\n" +
			"  moat image build --add ./proxy:/proxy --entrypoint /proxy --cap NET_BIND_SERVICE --port 443 --name proxy:1",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range adds {
				f, err := build.ParseAdd(s)
				if err != nil {
					return usageError{err}
				}
				opts.Files = append(opts.Files, f)
			}
			if caCerts {
				f, err := caBundleFile()
				if err != nil {
					return err
				}
				opts.Files = append(opts.Files, f)
			}
			if entrypoint != "" {
				opts.Entrypoint = []string{entrypoint}
			}
			if err := parseChown(chown, &opts); err != nil {
				return usageError{err}
			}
			if err := parseLabels(labels, &opts); err != nil {
				return usageError{err}
			}
			for _, c := range caps {
				opts.Privileges = append(opts.Privileges, "cap:"+c)
			}
			if err := sourceDateEpoch(&opts); err != nil {
				return usageError{err}
			}
			return writeImage(a, cmd, out, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "the OCI layout tar to write (default: import into the master)")
	f.StringArrayVar(&adds, "add", nil, "add a file or directory: SRC:DST[:MODE] (repeatable)")
	f.StringVar(&entrypoint, "entrypoint", "", "the program to run (an absolute path in the image)")
	f.StringArrayVar(&opts.Cmd, "cmd", nil, "default argument (repeatable)")
	f.StringArrayVar(&opts.Env, "env", nil, "environment variable K=V (repeatable)")
	f.StringVar(&opts.User, "user", "", "uid[:gid] to run as (default: 65534 at run time; 0 declares the root privilege)")
	f.StringArrayVar(&opts.Privileges, "privilege", nil, "declare a privilege the image needs: cap:NAME, root, writable-root, new-privileges, seccomp-unconfined, host-network (repeatable; the signature covers it)")
	f.StringArrayVar(&caps, "cap", nil, "declare a capability the image needs, e.g. NET_BIND_SERVICE (repeatable; same as --privilege cap:NAME)")
	f.StringVar(&opts.WorkDir, "workdir", "", "working directory")
	f.StringArrayVar(&opts.Ports, "port", nil, "exposed port, e.g. 8080 or 53/udp (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "label K=V (repeatable)")
	f.StringVar(&opts.Name, "name", "", "image name, e.g. web:1")
	f.StringVar(&chown, "chown", "", "owner UID:GID of the added files (default 0:0)")
	f.BoolVar(&caCerts, "ca-certs", false, "add this machine's CA certificate bundle at /etc/ssl/certs/ca-certificates.crt")
	return cmd
}

func writeImage(a *app, cmd *cobra.Command, out string, opts build.Options) error {
	if out == "" {
		var buf bytes.Buffer
		if _, err := build.Build(cmd.Context(), &buf, opts); err != nil {
			return err
		}
		imgs, err := a.masterClient().ImportImage(cmd.Context(), &buf, opts.Name)
		if err != nil {
			return err
		}
		return a.printImages(imgs)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".moat-build-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	desc, err := build.Build(cmd.Context(), tmp, opts)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	if a.json {
		return printJSON(a.stdout, map[string]any{"file": out, "digest": desc.Digest, "name": opts.Name})
	}
	fmt.Fprintf(a.stdout, "%s %s\n", desc.Digest, out)
	return nil
}

func caBundleFile() (build.File, error) {
	for _, p := range caBundles {
		if _, err := os.Stat(p); err == nil {
			return build.File{Src: p, Dst: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644}, nil
		}
	}
	return build.File{}, fmt.Errorf("--ca-certs: no CA bundle found (looked in %s); install ca-certificates", strings.Join(caBundles, ", "))
}

func parseChown(s string, opts *build.Options) error {
	if s == "" {
		return nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return fmt.Errorf("--chown %q: want UID:GID", s)
	}
	opts.UID, opts.GID = uid, gid
	return nil
}

func parseLabels(labels []string, opts *build.Options) error {
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want K=V", l)
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	return nil
}

// sourceDateEpoch honours SOURCE_DATE_EPOCH, the reproducible-builds
// convention for the time to stamp on outputs.
func sourceDateEpoch(opts *build.Options) error {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	opts.Created = time.Unix(n, 0).UTC()
	return nil
}
