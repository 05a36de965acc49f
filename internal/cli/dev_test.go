package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/local"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestDevUpDown: moat dev up makes an enrolled node whose logs are its
// own, and moat dev down leaves nothing behind on the machine.
func TestDevUpDown(t *testing.T) {
	testcluster.RequireRoot(t)
	for _, bin := range []string{"/usr/sbin/sshd", "ssh", "ip", "ssh-keygen", "nsenter", "setsid"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install openssh-server openssh-client iproute2 util-linux (CI installs them)", bin)
		}
	}
	if _, err := net.InterfaceByName("mbdev"); err == nil {
		t.Skip("a local cluster of moat dev up runs on this machine (bridge mbdev): moat dev down removes it")
	}
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "dev")
	dev := func(args ...string) {
		t.Helper()
		cmd := exec.Command(testcluster.Moat(t), append([]string{"dev", "--dir", dir}, args...)...)
		// A master of the cluster's own, on a socket of the test's.
		cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+filepath.Join(tmp, "master.sock"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("moat dev %v: %v\n%s", args, err, out.String())
		}
	}
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err == nil {
			dev("down")
		}
	})
	dev("up", "--nodes", "1")
	// Enrolment starts the daemon without systemd logging to
	// /var/log/moat-node.log: the node's own.
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		nodeLog := filepath.Join(dir, "cluster", "n1", "var-log", "moat-node.log")
		if b, err := os.ReadFile(nodeLog); err != nil || len(b) == 0 {
			t.Errorf("the node daemon's log %s: %v, %d bytes", nodeLog, err, len(b))
		}
	}
	// A local pool's machine where the dev master keeps its pools' clouds:
	// down removes it too, master or not.
	cloud, err := local.OpenCloud(filepath.Join(dir, "master", "pools", "try"), testcluster.Moat(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cloud.Create(context.Background(), provider.CreateRequest{Name: "try-dev", Type: "local-1", Image: local.BaseImage})
	if err != nil {
		t.Fatal(err)
	}
	machine, err := cloud.Machine(srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// What a failed down left: the machine's processes, namespace, bridge.
		if _, err := os.Stat("/run/netns/" + machine.NetNS); err == nil {
			out, _ := exec.Command("ip", "netns", "pids", machine.NetNS).Output()
			for _, pid := range strings.Fields(string(out)) {
				exec.Command("kill", "-9", pid).Run()
			}
			exec.Command("ip", "netns", "del", machine.NetNS).Run()
		}
		exec.Command("ip", "link", "del", cloud.Bridge()).Run()
	})
	dev("down")
	for _, gone := range []string{dir, "/run/netns/moat-dev-n1", "/sys/class/net/mbdev", "/run/netns/" + machine.NetNS, "/sys/class/net/" + cloud.Bridge()} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("moat dev down left %s", gone)
		}
	}
	if live, _ := filepath.Glob("/run/netns/moat-*"); len(live) > 0 {
		return // other local clusters (parallel tests) keep the machine's mount points
	}
	if _, err := os.Stat("/run/moat-local.lock"); err == nil {
		t.Error("moat dev down left /run/moat-local.lock")
	}
	for _, d := range []string{"/var/lib/moat", "/run/moat", "/etc/moat"} {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			t.Errorf("moat dev down left %s, empty", d)
		}
	}
}
