package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture lays out the sources of a small image in dir and returns the
// options that build it. mtime and appMode vary what must not matter: the
// source mtimes and the mode of a file whose mode is forced; reverse varies
// the order the files are created in.
func fixture(t *testing.T, dir string, mtime time.Time, appMode os.FileMode, reverse bool) Options {
	t.Helper()
	steps := []func(){
		func() { mkfile(t, dir, "app", "\x7fELF not really\n", appMode, mtime) },
		func() { mkfile(t, dir, "conf.toml", "listen = 8080\n", 0o640, mtime) },
		func() { mkfile(t, dir, "certs/ca.pem", "CA\n", 0o644, mtime) },
		func() { mkfile(t, dir, "certs/sub/x.pem", "X\n", 0o644, mtime) },
	}
	if reverse {
		slices.Reverse(steps)
	}
	for _, step := range steps {
		step()
	}
	for _, err := range []error{
		os.Symlink("conf.toml", filepath.Join(dir, "alias.toml")),
		os.Symlink("ca.pem", filepath.Join(dir, "certs", "current")),
		os.Chmod(filepath.Join(dir, "certs"), 0o755),
		os.Chmod(filepath.Join(dir, "certs", "sub"), 0o750),
		os.Chtimes(filepath.Join(dir, "certs", "sub"), mtime, mtime),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return Options{
		Files: []File{
			{Src: filepath.Join(dir, "app"), Dst: "/usr/local/bin/app", Mode: 0o755},
			{Src: filepath.Join(dir, "conf.toml"), Dst: "/etc/demo/conf.toml"},
			{Src: filepath.Join(dir, "alias.toml"), Dst: "/etc/demo/alias.toml"},
			{Src: filepath.Join(dir, "certs"), Dst: "/etc/ssl/certs"},
		},
		Entrypoint: []string{"/usr/local/bin/app", "serve"},
		Cmd:        []string{"--verbose"},
		Env:        []string{"TZ=UTC"},
		User:       "1000:1000",
		WorkDir:    "/srv",
		Ports:      []string{"8080", "53/udp"},
		Labels:     map[string]string{"org.opencontainers.image.source": "https://example.com/demo"},
		Name:       "demo:1",
		UID:        1000,
		GID:        1000,
		Arch:       "amd64",
		Created:    created,
	}
}

func build(t *testing.T, opts Options) ([]byte, ocispec.Descriptor) {
	t.Helper()
	var buf bytes.Buffer
	desc, err := Build(context.Background(), &buf, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes(), desc
}

func TestBuildReproducible(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, descA := build(t, fixture(t, dirA, time.Unix(1e9, 0), 0o600, false))
	b, descB := build(t, fixture(t, dirB, time.Unix(1.5e9, 123), 0o777, true))
	if !bytes.Equal(a, b) {
		t.Fatalf("same inputs gave different output: %s and %s", descA.Digest, descB.Digest)
	}

	opts := fixture(t, t.TempDir(), time.Unix(1e9, 0), 0o600, false)
	touched := time.Now()
	for _, f := range opts.Files {
		if err := os.Chtimes(f.Src, touched, touched); err != nil {
			t.Fatal(err)
		}
	}
	if _, desc := build(t, opts); desc.Digest != descA.Digest {
		t.Errorf("touching the sources changed the digest: %s, want %s", desc.Digest, descA.Digest)
	}

	if err := os.WriteFile(opts.Files[1].Src, []byte("listen = 9090\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, desc := build(t, opts); desc.Digest == descA.Digest {
		t.Errorf("changing a source's content kept the digest %s", desc.Digest)
	}

	opts.Created = created.Add(time.Second)
	if _, desc := build(t, opts); desc.Digest == descA.Digest {
		t.Errorf("changing Created kept the digest %s", desc.Digest)
	}
}

func TestBuildCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := fixture(t, t.TempDir(), created, 0o755, false)
	if _, err := Build(ctx, new(bytes.Buffer), opts); !errors.Is(err, context.Canceled) {
		t.Errorf("Build with a canceled context = %v, want context.Canceled", err)
	}
}

func TestBuildDefaults(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		Files:      []File{{Src: mkfile(t, dir, "app", "x", 0o755, created), Dst: "/app"}},
		Entrypoint: []string{"/app"},
	}
	data, desc := build(t, opts)
	img := readImage(t, data)
	if img.config.Created == nil || !img.config.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created = %v, want the Unix epoch", img.config.Created)
	}
	if img.config.OS != "linux" || img.config.Architecture == "" {
		t.Errorf("platform = %s/%s, want linux/GOARCH", img.config.OS, img.config.Architecture)
	}
	if diff := cmp.Diff([]string{defaultPath}, img.config.Config.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if img.config.Config.User != "" {
		t.Errorf("user = %q, want unset", img.config.Config.User)
	}
	if _, ok := desc.Annotations[ocispec.AnnotationRefName]; ok {
		t.Errorf("ref.name set without a Name: %v", desc.Annotations)
	}
	for _, h := range img.layer {
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: owner %d:%d mtime %v, want 0:0 at the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}
}

func TestBuildKeepsUserPath(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		Files:      []File{{Src: mkfile(t, dir, "app", "x", 0o755, created), Dst: "/app"}},
		Entrypoint: []string{"/app"},
		Env:        []string{"A=1", "PATH=/opt/bin"},
	}
	data, _ := build(t, opts)
	if diff := cmp.Diff(opts.Env, readImage(t, data).config.Config.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

// TestBuildPrivileges: declared privileges become one canonical label, so
// the same privileges, however written, give the same digest.
func TestBuildPrivileges(t *testing.T) {
	dir := t.TempDir()
	opts := func(privileges []string, labels map[string]string) Options {
		return Options{
			Files:      []File{{Src: mkfile(t, dir, "app", "x", 0o755, created), Dst: "/app"}},
			Entrypoint: []string{"/app"}, Privileges: privileges, Labels: labels,
		}
	}
	data, a := build(t, opts([]string{"writable-root", "cap:net_bind_service"}, nil))
	if got := readImage(t, data).config.Config.Labels["org.moatcloud.privileges"]; got != "cap:NET_BIND_SERVICE,writable-root" {
		t.Errorf("label = %q, want cap:NET_BIND_SERVICE,writable-root", got)
	}
	_, b := build(t, opts([]string{"CAP:CAP_NET_BIND_SERVICE"}, map[string]string{"org.moatcloud.privileges": "writable-root"}))
	if a.Digest != b.Digest {
		t.Errorf("the same privileges written two ways gave %s and %s", a.Digest, b.Digest)
	}
	data, _ = build(t, opts(nil, nil))
	if labels := readImage(t, data).config.Config.Labels; labels != nil {
		t.Errorf("no privileges: labels %v, want none", labels)
	}
}
