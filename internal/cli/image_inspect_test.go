package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestImageShowsPrivileges: an image built with declared privileges goes
// into the master's store, and image ls and image inspect show them.
func TestImageShowsPrivileges(t *testing.T) {
	testcluster.RequireRoot(t)
	keys := t.TempDir()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(keys, "master_ed25519")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	m := testcluster.StartMaster(t, filepath.Join(keys, "master_ed25519"))
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(testcluster.Moat(t), args...)
		cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+m.Socket)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errOut.String(), ee.ExitCode()
		}
		return out.String(), errOut.String(), 0
	}
	probe := testcluster.ProbeBinary(t)
	if _, errOut, code := cli("image", "build", "--add", probe+":/probe", "--entrypoint", "/probe", "--cap", "net_bind_service",
		"--privilege", "writable-root", "--name", "edge:1"); code != 0 {
		t.Fatalf("image build: %s", errOut)
	}
	if _, errOut, code := cli("image", "build", "--add", probe+":/probe", "--entrypoint", "/probe", "--privilege", "everything", "--name", "bad:1"); code != 2 || !strings.Contains(errOut, `"everything" is not a privilege`) {
		t.Errorf("build with an unknown privilege: exit %d, %q", code, errOut)
	}
	out, _, _ := cli("image", "ls")
	if !strings.Contains(out, "PRIVILEGES") || !strings.Contains(out, "cap:NET_BIND_SERVICE,writable-root") {
		t.Errorf("image ls:\n%s", out)
	}
	out, _, code := cli("image", "inspect", "edge:1")
	if code != 0 || !strings.Contains(out, "privileges:   cap:NET_BIND_SERVICE, writable-root") {
		t.Errorf("image inspect: exit %d\n%s", code, out)
	}
	out, _, _ = cli("image", "inspect", "--json", "edge:1")
	var img masterapi.Image
	if err := json.Unmarshal([]byte(out), &img); err != nil || strings.Join(img.Privileges, ",") != "cap:NET_BIND_SERVICE,writable-root" {
		t.Errorf("image inspect --json: %+v %v", img, err)
	}
	if _, errOut, code := cli("image", "inspect", "nope:1"); code != 3 {
		t.Errorf("inspect of a missing image: exit %d %q, want 3", code, errOut)
	}
}
