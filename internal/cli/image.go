package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// imageBuildHelp is image build's long help, kept out of the command's
// function so that the function reads as what it does.
const imageBuildHelp = `Build a minimal OCI image (an OCI layout tar) from files: typically one
static binary, its config and CA certificates. No base image, no shell.
The same inputs give the same digest: fixed mtimes (SOURCE_DATE_EPOCH or
the epoch), sorted entries, owner 0:0 unless --chown. With -o the image is
written to FILE; without, it goes into the master's store.

--add copies files as they are. A dynamically linked program needs more:
--add-binary adds it with its ELF interpreter and every shared library it
needs, found as this machine's loader finds them (DT_RUNPATH or DT_RPATH
with $ORIGIN, /etc/ld.so.cache, the default directories), each put where
the image's loader will look. DST defaults to PATH. The image then depends
on this machine's libraries too: build on the release you mean to ship.

The default arguments follow the entrypoint: give them after --, as the
command line they are (-- run --config /etc/caddy.json), or one --cmd
each.

Privileges beyond moat's strict defaults (a capability, root, a writable
root filesystem, ...) are declared here, in the image's config, which the
release signature covers: nodes grant a container only what its signed
image declares (or what the node's operator allows), whatever the master
asks for.`

func (a *app) imageBuildCommand() *cobra.Command {
	var opts build.Options
	var out, entrypoint, chown string
	var adds, binaries, labels, caps []string
	var appRef string
	var caCerts bool
	cmd := &cobra.Command{
		Use:   "build [-o FILE] (--add SRC:DST[:MODE] | --add-binary PATH[:DST])... --entrypoint PATH [flags] [-- ARG...]",
		Short: "Build a minimal, reproducible OCI image from files",
		Long:  imageBuildHelp,
		Example: "  moat image build -o web.tar --add ./web:/web --entrypoint /web --ca-certs --port 8080 --name web:1\n" +
			"  moat image build --add ./proxy:/proxy --entrypoint /proxy --cap NET_BIND_SERVICE --port 443 --name proxy:1\n" +
			"  moat image build --add-binary /usr/bin/caddy --add ./caddy.json:/etc/caddy.json --entrypoint /usr/bin/caddy \\\n" +
			"      --name caddy:1 -- run --config /etc/caddy.json",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := buildCmdArgs(cmd, args, &opts); err != nil {
				return usageError{err}
			}
			for _, s := range adds {
				f, err := build.ParseAdd(s)
				if err != nil {
					return usageError{err}
				}
				opts.Files = append(opts.Files, f)
			}
			for _, s := range binaries {
				f, err := build.ParseAddBinary(s)
				if err != nil {
					return usageError{err}
				}
				opts.Binaries = append(opts.Binaries, f)
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
			if err := setAppLabel(appRef, &opts); err != nil {
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
	f.StringArrayVar(&binaries, "add-binary", nil, "add an ELF program with its interpreter and shared libraries: PATH[:DST], DST defaulting to PATH (repeatable)")
	f.StringVar(&entrypoint, "entrypoint", "", "the program to run (an absolute path in the image)")
	f.StringArrayVar(&opts.Cmd, "cmd", nil, "default argument, one per flag (repeatable; or give them all after --)")
	f.StringArrayVar(&opts.Env, "env", nil, "environment variable K=V (repeatable)")
	f.StringVar(&opts.User, "user", "", "uid[:gid] to run as (default: 65534 at run time; 0 declares the root privilege)")
	f.StringArrayVar(&opts.Privileges, "privilege", nil, "declare a privilege the image needs: cap:NAME, root, writable-root, new-privileges, seccomp-unconfined, host-network (repeatable; the signature covers it)")
	f.StringArrayVar(&caps, "cap", nil, "declare a capability the image needs, e.g. NET_BIND_SERVICE (repeatable; same as --privilege cap:NAME)")
	f.StringVar(&opts.WorkDir, "workdir", "", "working directory")
	f.StringArrayVar(&opts.Ports, "port", nil, "exposed port, e.g. 8080 or 53/udp (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "label K=V (repeatable)")
	f.StringVar(&appRef, "app", "", "declare the app the image is, TENANT/APP (or APP, in the default tenant): nodes give an app's secrets only to images declaring it (the signature covers it)")
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
		imgs, err := a.importToMaster(cmd.Context(), &buf, opts.Name)
		if err != nil {
			return err
		}
		return a.printImages(imgs)
	}
	desc, err := buildFile(cmd.Context(), out, opts)
	if err != nil {
		return err
	}
	if a.json {
		return printJSON(a.stdout, map[string]any{"file": out, "digest": desc.Digest, "name": opts.Name})
	}
	fmt.Fprintf(a.stdout, "%s %s\n", desc.Digest, out)
	return nil
}

// buildFile writes the image to out whole or not at all, through a
// temporary file renamed over it. A device or a pipe (/dev/stdout, a FIFO)
// is written to as it is: a rename would replace it with a regular file.
func buildFile(ctx context.Context, out string, opts build.Options) (ocispec.Descriptor, error) {
	if st, err := os.Stat(out); err == nil && !st.Mode().IsRegular() && !st.IsDir() {
		f, err := os.OpenFile(out, os.O_WRONLY, 0)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		desc, err := build.Build(ctx, f, opts)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return desc, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".moat-build-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(tmp.Name())
	desc, err := build.Build(ctx, tmp, opts)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, os.Rename(tmp.Name(), out)
}

// buildCmdArgs takes the default arguments given after --. Anything before
// it is a mistake, most likely a flag's value that lost its flag.
func buildCmdArgs(cmd *cobra.Command, args []string, opts *build.Options) error {
	dash := cmd.ArgsLenAtDash()
	switch {
	case len(args) == 0:
		return nil
	case dash != 0:
		return fmt.Errorf("unexpected argument %q: give the default arguments after --, e.g. -- run --config /etc/app.json", args[0])
	case len(opts.Cmd) > 0:
		return fmt.Errorf("default arguments given both with --cmd (%s) and after -- (%s): use one", strings.Join(opts.Cmd, " "), strings.Join(args, " "))
	}
	opts.Cmd = args
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
