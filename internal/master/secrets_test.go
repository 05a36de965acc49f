package master_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/secret"
	"github.com/moatcloud/moat/internal/testcluster"
)

// secretsEnv is a cluster whose operator made a secrets key (installed on
// every node, as enrolment does) and two signed images, each declaring
// its app: web:1 is default/web, other:1 default/other.
type secretsEnv struct {
	*env
	keys    secret.Keys
	keyFile string
}

func newSecretsEnv(t *testing.T, nodes int) *secretsEnv {
	t.Helper()
	c := testcluster.NewCluster(t, nodes)
	m := c.StartMaster()
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	c.Enrol(m, names...)
	m.ImportProbe(t, "web:1", "--app", "default/web")
	m.ImportProbe(t, "other:1", "--app", "other")
	keys, err := secret.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, keys.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := os.WriteFile(filepath.Join(n.Dir, "etc-moat", "secrets.key"), keys.Marshal(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &secretsEnv{env: &env{t: t, c: c, m: m}, keys: keys, keyFile: keyFile}
}

// moat runs the CLI as the operator: their key file, the master's socket.
func (e *secretsEnv) moat(stdin string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(testcluster.Moat(e.t), args...)
	cmd.Env = append(os.Environ(), "MOAT_MASTER_SOCKET="+e.m.Socket, "MOAT_SECRETS_KEY="+e.keyFile)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("moat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inside reads a file in a replica's container, from the host, with its
// mode and owner.
func (e *secretsEnv) inside(r masterapi.Replica, path string) (string, os.FileMode, uint32) {
	e.t.Helper()
	c, err := e.c.NodeAPI(r.Node).Container(context.Background(), r.ID)
	if err != nil || c.Pid == 0 {
		e.t.Fatalf("replica %s: %+v %v", r.ID, c, err)
	}
	file := filepath.Join("/proc", strconv.Itoa(c.Pid), "root", path)
	b, err := os.ReadFile(file)
	if err != nil {
		e.t.Fatalf("%s in %s: %v", path, r.ID, err)
	}
	var st syscall.Stat_t
	syscall.Stat(file, &st)
	return string(b), os.FileMode(st.Mode & 0o7777), st.Uid
}

func webSpec(extra string) string {
	return `name: web
image: web:1
replicas: 2
args: [serve, ":8080"]
resources: {cpu: 100m, memory: 32Mi}
ports: [{name: http, port: 8080}]
health: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}
update: {deadline: 30s, maxUnavailable: 0}
secrets: [{name: db_password, env: DB_PASSWORD}, {name: tls, reload: signal}]
` + extra
}

// keepsServing watches the app until stop is called and reports the
// fewest replicas it saw ready.
func (e *secretsEnv) keepsServing(app string) (stop func() int) {
	var fewest atomic.Int64
	fewest.Store(1 << 30)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			reps, err := e.m.Client.Replicas(context.Background(), app)
			if err == nil {
				n, _ := ready(reps)
				if int64(n) < fewest.Load() {
					fewest.Store(int64(n))
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() int { close(done); <-finished; return int(fewest.Load()) }
}

// TestSecretsMasterCannotRead: the operator sets secrets with the CLI;
// replicas read them at /run/secrets; the master's own key cannot get
// them into another app's container; new versions roll the app, or
// reload it in place, and a rotation of the key restarts nothing; and
// no value is anywhere on the master or on a node's disk.
func TestSecretsMasterCannotRead(t *testing.T) {
	e := newSecretsEnv(t, 2)
	ctx := context.Background()
	values := []string{"db-v1-5c0f2e9a1b", "tls-v1-8d7e6f5a4b", "db-v2-3a2b1c0d9e", "tls-v2-7f6e5d4c3b"}
	e.moat(values[0], "secret", "set", "web", "db_password")
	e.moat(values[1], "secret", "set", "web", "tls")
	ls := e.moat("", "secret", "ls", "web", "--json")
	if !strings.Contains(ls, `"db_password"`) || strings.Contains(ls, values[0]) || strings.Contains(ls, "envelope") {
		t.Fatalf("secret ls: %s", ls)
	}

	t.Run("refusals change nothing", func(t *testing.T) {
		_, err := e.m.Client.PutSecret(ctx, "web", "db_password", masterapi.PutSecretRequest{Tenant: "acme", Version: 2, Envelope: []byte("x")})
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("an envelope sealed for another tenant: %v", err)
		}
		_, err = e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: strings.ReplaceAll(webSpec(""), "name: tls", "name: missing"), File: "app.yaml"})
		if !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("a deploy naming a secret not set: %v", err)
		}
		e.moat("v", "secret", "set", "web2", "db_password")
		e.moat("v", "secret", "set", "web2", "tls")
		_, err = e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: strings.Replace(webSpec(""), "name: web", "name: web2", 1), File: "app.yaml"})
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "default/web2") {
			t.Errorf("a deploy of an image declaring another app: %v", err)
		}
		if apps, _ := e.m.Client.Apps(ctx); len(apps) != 0 {
			t.Errorf("refused deploys made apps: %+v", apps)
		}
		if ss, _ := e.m.Client.Secrets(ctx, "web"); len(ss) != 2 || ss[0].Version != 1 || ss[1].Version != 1 {
			t.Errorf("web's secrets after refusals: %+v", ss)
		}
		e.moat("", "secret", "rm", "web2", "db_password")
		e.moat("", "secret", "rm", "web2", "tls")
		if ss, _ := e.m.Client.Secrets(ctx, "web2"); len(ss) != 0 {
			t.Errorf("web2's secrets after rm: %+v", ss)
		}
	})

	rev := e.deploy(webSpec("")).Revision
	if p := e.wait("web", rev); p.Status != "deployed" {
		t.Fatalf("deploy: %+v", p)
	}
	reps := e.waitReplicas("web", "2 ready", 30*time.Second, func(r []masterapi.Replica) bool { n, _ := ready(r); return n == 2 })
	for _, r := range reps {
		if r.Desired != "run" {
			continue
		}
		if v, mode, uid := e.inside(r, "/run/secrets/db_password"); v != values[0] || mode != 0o400 || uid != 65534 {
			t.Errorf("%s: /run/secrets/db_password %q mode %o uid %d; want the value, 0400, the container's uid 65534", r.ID, v, mode, uid)
		}
	}

	t.Run("another app's replicas cannot get it, even when the master asks", func(t *testing.T) {
		e.deploy(strings.ReplaceAll(strings.ReplaceAll(webSpec(""), "web", "other"), "secrets:", "#"))
		others := e.waitReplicas("other", "1 ready", 30*time.Second, func(r []masterapi.Replica) bool { n, _ := ready(r); return n >= 1 })
		node := others[0].Node
		envs, err := e.m.Client.SecretEnvelopes(ctx)
		if err != nil || len(envs) != 2 {
			t.Fatalf("envelopes: %v %v", envs, err)
		}
		spec := nodeapi.ContainerSpec{Name: "stolen", Image: "other:1", Cmd: []string{"serve", ":8080"},
			Secrets: []nodeapi.SecretMount{{Name: envs[0].Name, Envelope: envs[0].Envelope}}}
		body, _ := jsonOf(spec)
		status, answer := masterRPC(t, e.c, node, "POST", "/v1/containers", body)
		if status != http.StatusForbidden || !strings.Contains(answer, "bound to app default/web") || !strings.Contains(answer, "declares default/other") {
			t.Errorf("the master's key asked for web's secret in other's container: %d %s", status, answer)
		}
		if _, err := e.c.NodeAPI(node).Container(ctx, "stolen"); err == nil {
			t.Errorf("the refused container exists")
		}
	})

	t.Run("a new version rolls the app, which keeps serving", func(t *testing.T) {
		stop := e.keepsServing("web")
		e.moat(values[2], "secret", "set", "web", "db_password")
		apps, _ := e.m.Client.Apps(ctx)
		var r int
		for _, a := range apps {
			if a.Name == "web" {
				r = a.Revision
			}
		}
		if p := e.wait("web", r); p.Status != "deployed" || r == rev {
			t.Fatalf("revision %d after the new version: %+v", r, p)
		}
		if fewest := stop(); fewest < 2 {
			t.Errorf("%d replicas ready at the worst of the roll, want 2", fewest)
		}
		for _, rep := range e.replicas("web") {
			if rep.Desired == "run" && rep.State == "ready" {
				if v, _, _ := e.inside(rep, "/run/secrets/db_password"); v != values[2] {
					t.Errorf("%s runs %q, want the new version", rep.ID, v)
				}
			}
		}
	})

	t.Run("reload: signal replaces the file in place", func(t *testing.T) {
		before := e.replicas("web")
		e.moat(values[3], "secret", "set", "web", "tls")
		for _, r := range before {
			if r.Desired != "run" {
				continue
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				v, _, _ := e.inside(r, "/run/secrets/tls")
				if v == values[3] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: tls is %q, want the new version in place", r.ID, v)
				}
				time.Sleep(50 * time.Millisecond)
			}
			waitNodeLog(t, e.c, r, "got SIGHUP")
		}
		after := e.replicas("web")
		if ids(before) != ids(after) {
			t.Errorf("replicas changed on a reload: %s, then %s", ids(before), ids(after))
		}
	})

	t.Run("rotation keeps the app serving", func(t *testing.T) {
		old := e.keys
		stop := e.keepsServing("web")
		e.moat("", "secret", "rotate")
		if fewest := stop(); fewest < 2 {
			t.Errorf("%d replicas ready at the worst of the rotation, want 2", fewest)
		}
		b, _ := os.ReadFile(e.keyFile)
		rotated, err := secret.ParseKeys(b)
		if err != nil || len(rotated) != 2 || rotated.Recipient() == old.Recipient() || rotated[1].String() != old.Sealing().String() {
			t.Fatalf("the operator's key file after rotation: %v %v", rotated, err)
		}
		for _, n := range e.c.Nodes {
			nb, _ := os.ReadFile(filepath.Join(n.Dir, "etc-moat", "secrets.key"))
			if !bytes.Equal(nb, b) {
				t.Errorf("node %s's key file is not the rotated one", n.Name)
			}
		}
		envs, _ := e.m.Client.SecretEnvelopes(ctx)
		for _, env := range envs {
			if _, _, err := secret.Open(env.Envelope, secret.Keys{rotated.Sealing()}); err != nil {
				t.Errorf("%s after rotation: %v", env.Name, err)
			}
		}
		// New replicas get the new envelopes, and nodes open them.
		resp, err := e.m.Client.Scale(ctx, "web", 3)
		if err != nil {
			t.Fatal(err)
		}
		if p := e.wait("web", resp.Revision); p.Status != "deployed" {
			t.Fatalf("scale after rotation: %+v", p)
		}
	})

	t.Run("no value anywhere on the master or on a node's disk", func(t *testing.T) {
		dirs := []string{e.m.Dir}
		for _, n := range e.c.Nodes {
			dirs = append(dirs, n.Dir)
		}
		for _, dir := range dirs {
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return nil
				}
				b, _ := os.ReadFile(path)
				for _, v := range values {
					if bytes.Contains(b, []byte(v)) {
						t.Errorf("%s holds %s", path, v)
					}
				}
				return nil
			})
		}
		for _, v := range values {
			if strings.Contains(e.m.Log(), v) {
				t.Errorf("the master's log holds %s", v)
			}
		}
	})
}

func ids(reps []masterapi.Replica) string {
	var out []string
	for _, r := range reps {
		if r.Desired == "run" {
			out = append(out, r.ID)
		}
	}
	return strings.Join(out, ",")
}

// waitNodeLog waits for a line in a replica's log, through root's node API.
func waitNodeLog(t *testing.T, c *testcluster.Cluster, r masterapi.Replica, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		c.NodeAPI(r.Node).Logs(context.Background(), r.ID, nodeapi.LogOptions{Tail: -1}, func(l nodeapi.LogEntry) error {
			found = found || strings.Contains(l.Line, substr)
			return nil
		})
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", r.ID, substr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// masterRPC sends one raw request to a node's API over `ssh ... rpc` with
// the master's key, as an attacker holding it would.
func masterRPC(t *testing.T, c *testcluster.Cluster, node, method, path, body string) (int, string) {
	t.Helper()
	n, err := c.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(n.Addr.String()+" "+n.HostKey+"\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-i", c.MasterKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+known,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+n.Addr.String(), "rpc")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	fmt.Fprintf(in, "%s %s HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(out), nil)
	if err != nil {
		t.Fatalf("rpc %s %s: %v: %s", method, path, err, errOut.String())
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
