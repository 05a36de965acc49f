package node_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// tool returns a third-party OCI tool the interop tests use; CI installs
// them (scripts/test), so they are skipped only where truly absent.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s (Debian package %s; scripts/test installs it)", name, name)
	}
	return p
}

func sh(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestThirdPartyImages: images made by umoci, and converted by skopeo to
// a docker archive and an OCI archive, import into a node and run.
func TestThirdPartyImages(t *testing.T) {
	umoci, skopeo := tool(t, "umoci"), tool(t, "skopeo")
	dir := t.TempDir()
	sh(t, dir, umoci, "init", "--layout", "lay")
	sh(t, dir, umoci, "new", "--image", "lay:probe")
	sh(t, dir, umoci, "unpack", "--image", "lay:probe", "bundle")
	probe, err := os.ReadFile(testcluster.ProbeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle", "rootfs", "probe"), probe, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, umoci, "repack", "--image", "lay:probe", "bundle")
	sh(t, dir, umoci, "config", "--image", "lay:probe", "--config.entrypoint", "/probe", "--config.user", "1234")
	sh(t, dir, skopeo, "copy", "oci:lay:probe", "docker-archive:"+filepath.Join(dir, "docker.tar")+":probe:docker")
	sh(t, dir, skopeo, "copy", "oci:lay:probe", "oci-archive:"+filepath.Join(dir, "oci.tar")+":probe")

	n := testcluster.StartNode(t)
	for _, tc := range []struct{ name, path, ref string }{
		{"umoci layout directory", filepath.Join(dir, "lay"), "probe:latest"},
		{"skopeo docker archive", filepath.Join(dir, "docker.tar"), "probe:docker"},
		{"skopeo OCI archive", filepath.Join(dir, "oci.tar"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(testcluster.Moat(t), "runtime", "--socket", n.Socket, "import", "--json", tc.path).CombinedOutput()
			if err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			ref := tc.ref
			if ref == "" {
				imgs, _ := n.Client.Images(context.Background())
				for _, img := range imgs {
					if img.Name == "" || img.Name == "probe:latest" {
						ref = img.Digest
					}
				}
			}
			name := strings.ToLower(strings.NewReplacer(" ", "-").Replace(tc.name))
			if r := probeReport(t, n, nodeapi.ContainerSpec{Name: name, Image: ref}); r.UID != 1234 {
				t.Errorf("ran as uid %d, want the image's user 1234", r.UID)
			}
		})
	}
}
