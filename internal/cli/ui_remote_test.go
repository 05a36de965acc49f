package cli_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// TestRemoteUI: over a remote context (the operator's own ssh, through a
// bastion), moat ui serves the dashboard on this machine from the remote
// master, as the operator: an admin sees the nodes and the apps, a
// tenant's viewer their apps and a note where the nodes would be.
func TestRemoteUI(t *testing.T) {
	h := testcluster.NewMasterHost(t, 2)
	h.Enrol(h.Master, "n2")
	h.Master.ImportProbe(t, "probe:1")
	alice := h.AddUser("alice", "admin@*")
	bob := h.AddUser("bob", "viewer@default")
	onlyThroughBastion(t, h)
	admin, viewer := newOperator(t, h, alice), newOperator(t, h, bob)
	for _, o := range []*operator{admin, viewer} {
		o.ok("context", "add", "prod", "moat-master", "--tenant", "default")
		o.ok("context", "use", "prod")
	}
	spec := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(spec, []byte("name: web\nimage: probe:1\nreplicas: 1\nargs: [serve, \":8080\"]\nresources: {cpu: 100m, memory: 32Mi}\n"+
		"ports: [{name: http, port: 8080}]\nhealth: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\nupdate: {deadline: 30s}\n"), 0o644)
	admin.ok("deploy", "-f", spec)

	page := admin.dashboard(t, "/")
	for _, want := range []string{`href="/nodes/n2"`, `href="/apps/web"`, `class="ready">1/1<`} {
		if !strings.Contains(page, want) {
			t.Errorf("admin's overview over the remote context: no %q in\n%s", want, page)
		}
	}
	if page := admin.dashboard(t, "/apps/web"); !strings.Contains(page, "serving on :8080") {
		t.Errorf("admin's app page: no log tail in\n%s", page)
	}
	page = viewer.dashboard(t, "/")
	if !strings.Contains(page, `href="/apps/web"`) || strings.Contains(page, `href="/nodes/n2"`) || !strings.Contains(page, "nodes: ") {
		t.Errorf("viewer's overview: want the app, no node, a note:\n%s", page)
	}
}

// dashboard runs moat ui as the operator, follows its URL as a browser
// would (the token becomes a cookie) to path, and returns the page.
func (o *operator) dashboard(t *testing.T, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := o.command(ctx, "ui", "--no-open")
	stderr := &testcluster.LockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	var url, base string
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^dashboard: ((http://127\.0\.0\.1:\d+)/\?token=\S+)\n$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("moat ui printed %q; stderr: %s", line, stderr.String())
		}
		url, base = m[1], m[2]
	case <-time.After(30 * time.Second):
		t.Fatalf("moat ui printed nothing in 30s; stderr: %s", stderr.String())
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(u string) string {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v; moat ui: %s", u, err, stderr.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	get(url)
	return get(base + path)
}
