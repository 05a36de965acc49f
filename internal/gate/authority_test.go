package gate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

// rpc sends one raw HTTP request to the node daemon over `ssh ... rpc`
// with the master's key, as an attacker holding it would, and returns the
// status and body. The session's input stays open until the answer is
// read, as a real client's does: the daemon takes a closed input for a
// client gone away.
func (a *attacker) rpc(method, path, body string, headers ...string) (int, string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append(a.opts(), "root@"+a.addr, "rpc")...)
	in, err := cmd.StdinPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	extra := ""
	for _, h := range headers {
		extra += h + "\r\n"
	}
	fmt.Fprintf(in, "%s %s HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		method, path, extra, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(out), nil)
	if err != nil {
		in.Close()
		cmd.Wait()
		a.t.Fatalf("rpc %s %s: no HTTP answer (%v): %s", method, path, err, errOut.String())
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// The privileges a container can be given beyond the strict defaults, each
// with the request field that asks for it.
var privileges = []struct {
	name    string // as an image declares it
	build   []string
	request string // the security settings of a create request asking for it
}{
	{"cap:NET_BIND_SERVICE", []string{"--cap", "NET_BIND_SERVICE"}, `"security":{"capAdd":["NET_BIND_SERVICE"]}`},
	{"root", []string{"--user", "0"}, `"user":"0"`},
	{"writable-root", []string{"--privilege", "writable-root"}, `"security":{"readOnlyRootfs":false}`},
	{"new-privileges", []string{"--privilege", "new-privileges"}, `"security":{"noNewPrivileges":false}`},
	{"seccomp-unconfined", []string{"--privilege", "seccomp-unconfined"}, `"security":{"seccomp":"unconfined"}`},
	{"host-network", []string{"--privilege", "host-network"}, `"security":{"network":"host"}`},
}

// probeReport is what the probe says from inside a container.
type probeReport struct {
	UID             int
	CapEff, Seccomp string
	NoNewPrivs      string
	Interfaces      []string
	RootWriteErr    string
}

// strict is what a container of an image declaring nothing reports.
var strict = probeReport{UID: 65534, CapEff: "0000000000000000", Seccomp: "2", NoNewPrivs: "1",
	Interfaces: []string{"lo:up|loopback|running"}, RootWriteErr: "read-only file system"}

// TestMasterKeyCannotCommand: an attacker holding the master's private key
// and using plain OpenSSH can place and stop signed software, and nothing
// more: no debug, no privilege an image's signer did not declare, no file
// of /etc/moat read or written, nothing in the inbox but blobs; afterwards
// the node's own files are byte for byte as before, and nothing the key
// started runs outside a container.
func TestMasterKeyCannotCommand(t *testing.T) {
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	a := newAttacker(t, c, "n1")
	root := c.NodeAPI("n1") // the operator, root on the node
	ctx := context.Background()
	images := map[string]string{"": "probe:1"}
	importSigned(t, c, "probe:1")
	for _, p := range privileges {
		ref := "probe-" + strings.NewReplacer(":", "-", "_", "-").Replace(strings.ToLower(p.name)) + ":1"
		importSigned(t, c, ref, p.build...)
		images[p.name] = ref
	}
	if _, err := root.CreateContainer(ctx, nodeapi.ContainerSpec{Name: "web", Image: "probe:1", Cmd: []string{"serve", ":8080"},
		Ports: []nodeapi.Port{{Port: 8080}}}, true); err != nil {
		t.Fatal(err)
	}
	state, procs := c.NodeState("n1"), c.NodeProcesses("n1")
	n, _ := c.Node("n1")
	secrets := nodeSecrets(t, n.Dir)

	t.Run("debug is refused", func(t *testing.T) {
		evil := []string{"sh", "-c", "cat /etc/shadow; cat /etc/moat/allowed_signers; echo x > /etc/moat/x"}
		args, _ := json.Marshal(nodeapi.DebugRequest{Args: evil})
		status, body := a.rpc("POST", "/v1/containers/web/debug", string(args), "Connection: Upgrade", "Upgrade: "+nodeapi.UpgradeProtocol)
		if status != http.StatusForbidden || !strings.Contains(body, "POST /v1/containers/{id}/debug") || !strings.Contains(body, "master") {
			t.Errorf("debug: %d %s; want 403 naming the route and the role", status, body)
		}
		// The same with moat's own client (over HTTP/1.1, which upgrades)
		// on the master's connection.
		pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
		defer pool.Close()
		conn := pool.Add(c.Target("n1"))
		h1 := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return conn.Open(ctx, "rpc")
		}}}
		var out, errOut strings.Builder
		code, err := nodeapi.NewClient(h1).Debug(ctx, "web", evil, nil, &out, &errOut)
		if !errors.Is(err, errs.ErrForbidden) || out.Len() > 0 {
			t.Errorf("debug through moat's client: exit %d, %v, output %q; want forbidden", code, err, out.String())
		}
		if _, err := os.Stat(filepath.Join(n.Dir, "etc-moat", "x")); err == nil {
			t.Error("the debug command wrote into /etc/moat")
		}
	})
	t.Run("root's routes are refused", func(t *testing.T) {
		for _, r := range [][2]string{{"POST", "/v1/images/import"}, {"DELETE", "/v1/images/probe:1"}} {
			if status, body := a.rpc(r[0], r[1], ""); status != http.StatusForbidden {
				t.Errorf("%s %s: %d %s; want 403", r[0], r[1], status, body)
			}
		}
		if _, err := root.Image(ctx, "probe:1"); err != nil {
			t.Errorf("probe:1 after the attempt to delete it: %v", err)
		}
	})
	for _, p := range privileges {
		t.Run("undeclared "+p.name+" is refused", func(t *testing.T) {
			before := containerIDs(t, root)
			body := fmt.Sprintf(`{"name":"evil","image":"probe:1","cmd":["report"],%s}`, p.request)
			status, resp := a.rpc("POST", "/v1/containers", body)
			if status != http.StatusForbidden || !strings.Contains(resp, "privilege "+p.name) || !strings.Contains(resp, "allow-privileges="+p.name) {
				t.Errorf("create asking %s: %d %s; want 403 naming it and what would allow it", p.name, status, resp)
			}
			if after := containerIDs(t, root); !slices.Equal(before, after) {
				t.Errorf("containers changed: %v, were %v", after, before)
			}
		})
		t.Run("declared "+p.name+" is granted, and nothing more", func(t *testing.T) {
			id := "ok-" + strings.NewReplacer(":", "-", "_", "-").Replace(strings.ToLower(p.name))
			body := fmt.Sprintf(`{"name":%q,"image":%q,"cmd":["report"],%s}`, id, images[p.name], p.request)
			if status, resp := a.rpc("POST", "/v1/containers", body); status != http.StatusCreated {
				t.Fatalf("create asking %s of an image declaring it: %d %s", p.name, status, resp)
			}
			got := reportOf(t, root, id)
			want := strict
			switch p.name {
			case "cap:NET_BIND_SERVICE":
				want.CapEff = "0000000000000400"
			case "root":
				want.UID = 0
			case "writable-root":
				want.RootWriteErr = "permission denied" // writable, but / belongs to root
			case "new-privileges":
				want.NoNewPrivs = "0"
			case "seccomp-unconfined":
				want.Seccomp = "0"
			case "host-network":
				want.Interfaces = got.Interfaces
				if len(got.Interfaces) < 2 {
					t.Errorf("host network: interfaces %v, want the node's", got.Interfaces)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s granted (-want +got):\n%s", p.name, diff)
			}
			root.RemoveContainer(ctx, id, true)
		})
	}
	t.Run("bind mounts of the node's files are refused", func(t *testing.T) {
		for _, src := range []string{"/etc/moat", "/etc", "/", "/root/.ssh", "/var/lib/moat/inbox", "/var/lib/moat/volumes/../../../etc/moat"} {
			body := fmt.Sprintf(`{"name":"mnt","image":"probe:1","cmd":["report"],"mounts":[{"source":%q,"target":"/x"}]}`, src)
			if status, resp := a.rpc("POST", "/v1/containers", body); status < 400 {
				t.Errorf("mount %s: %d %s", src, status, resp)
				root.RemoveContainer(ctx, "mnt", true)
			}
		}
	})
	t.Run("no verb reads /etc/moat", func(t *testing.T) {
		var seen []string
		for _, path := range []string{"/v1/info", "/v1/audit", "/v1/images", "/v1/containers", "/v1/images/..%2f..%2f..%2fetc%2fmoat%2fpeer_ed25519",
			"/v1/containers/web/logs?tail=100", "/v1/containers/..%2F..%2Fetc%2Fmoat/logs", "/../../etc/moat/peer_ed25519"} {
			_, body := a.rpc("GET", path, "")
			seen = append(seen, body)
		}
		for _, cmd := range []string{"get /etc/moat/peer_ed25519 -", "get ../../../etc/moat/allowed_signers -", "get /etc/moat/node.conf -"} {
			out, _, _ := a.sftp(cmd)
			seen = append(seen, out)
		}
		for _, arg := range []string{"blob sha256:" + strings.Repeat("0", 64), "dial web:22", "cat /etc/moat/peer_ed25519"} {
			out, _, _ := a.ssh("", arg)
			seen = append(seen, out)
		}
		for _, s := range seen {
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					t.Errorf("an answer holds a line of /etc/moat: %q", secret)
				}
			}
		}
	})
	t.Run("the inbox holds blobs only", func(t *testing.T) {
		blob := "blobs/sha256-" + strings.Repeat("ab", 32)
		a.sftp("mkdir blobs")
		empty := filepath.Join(t.TempDir(), "empty")
		os.WriteFile(empty, nil, 0o600)
		if _, errOut, code := a.sftp("put " + empty + " " + blob + ".part"); code != 0 {
			t.Fatalf("an upload into the inbox failed: %s", errOut)
		}
		for _, cmd := range []string{"chmod 755 blobs", "chmod 777 /", "chmod 755 " + blob + ".part", "mkdir evil", "mkdir blobs/evil",
			"symlink /etc/moat " + blob, "ln -s /etc/moat blobs/x", "rename " + blob + ".part blobs/evil", "rename " + blob + ".part ../evil",
			"put " + empty + " evil", "put " + empty + " blobs/evil"} {
			if out, errOut, code := a.sftp(cmd); code == 0 {
				t.Errorf("sftp %q succeeded: %s %s", cmd, out, errOut)
			}
		}
		fi, err := os.Stat(filepath.Join(n.Dir, "var-lib-moat", "inbox", "blobs"))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("inbox/blobs: %v %v, want mode 0700", fi.Mode(), err)
		}
		if _, errOut, code := a.sftp("rename " + blob + ".part " + blob); code != 0 {
			t.Errorf("a finished upload could not take its name: %s", errOut)
		}
	})

	// Afterwards: the operator's files are as they were, and once the
	// granted containers are gone, so is every process the key started.
	if diff := cmp.Diff(state, c.NodeState("n1")); diff != "" {
		t.Errorf("the node's own files changed (-before +after):\n%s", diff)
	}
	for _, id := range containerIDs(t, root) {
		if id != "web" {
			root.RemoveContainer(ctx, id, true)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := c.NodeProcesses("n1")
		if slices.Equal(now, procs) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes differ from before the attack (-before +after):\n%s", cmp.Diff(procs, now))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importSigned builds a probe image with extra build flags, imports it as
// root on the node and signs it with the release key.
func importSigned(t testing.TB, c *testcluster.Cluster, ref string, build ...string) {
	t.Helper()
	f, err := os.Open(testcluster.ProbeImage(t, ref, build...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	api := c.NodeAPI("n1")
	if _, err := api.ImportImage(context.Background(), f, ""); err != nil {
		t.Fatal(err)
	}
	testcluster.SignNodeImage(t, api, ref)
}

func containerIDs(t *testing.T, api *nodeapi.Client) []string {
	t.Helper()
	cs, err := api.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// reportOf waits for a probe run with "report" to exit and reads its report.
func reportOf(t *testing.T, api *nodeapi.Client, id string) probeReport {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := api.Container(ctx, id)
		if err == nil && c.State == nodeapi.StateExited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit: %+v %v", id, c, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var r probeReport
	err := api.Logs(ctx, id, nodeapi.LogOptions{Tail: -1}, func(e nodeapi.LogEntry) error {
		if strings.HasPrefix(e.Line, "{") {
			return json.Unmarshal([]byte(e.Line), &r)
		}
		return nil
	})
	if err != nil || r.Seccomp == "" {
		t.Fatalf("report of %s: %+v %v", id, r, err)
	}
	return r
}

// nodeSecrets are the lines of the node's /etc/moat files (the peer key's
// body, the signing policy, the settings), which no answer may contain.
func nodeSecrets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"peer_ed25519", "allowed_signers", "node.conf"} {
		b, err := os.ReadFile(filepath.Join(dir, "etc-moat", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("too few lines in /etc/moat to look for: %d", len(out))
	}
	return out
}
