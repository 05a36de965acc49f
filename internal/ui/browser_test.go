package ui_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// hostileLine is what the evil app prints: a page that showed it as HTML
// would run it.
const hostileLine = `<script>alert("pwned")</script><img src=x onerror=alert(2)>`

// dashboard is a real cluster with two apps, its master, and `moat ui`
// serving the dashboard from it as the real CLI does.
type dashboard struct {
	t     *testing.T
	nodes []string
	m     *testcluster.Master
	url   string // with the token
	base  string // http://127.0.0.1:PORT
}

func startDashboard(t *testing.T) *dashboard {
	t.Helper()
	c := testcluster.NewCluster(t, 2)
	c.NodeConf = append(c.NodeConf, "metrics-interval=1s")
	m := c.StartMaster()
	d := &dashboard{t: t, m: m}
	for _, n := range c.Nodes {
		d.nodes = append(d.nodes, n.Name)
	}
	c.Enrol(m, d.nodes...)
	m.ImportProbe(t, "probe:1")
	d.deploy("web", 2, `args: [serve, ":8080"]`)
	d.deploy("evil", 1, fmt.Sprintf("args: [say, %q]", hostileLine))
	d.waitMetrics()
	d.startUI()
	return d
}

func (d *dashboard) deploy(name string, replicas int, args string) {
	d.t.Helper()
	spec := fmt.Sprintf("name: %s\nimage: probe:1\nreplicas: %d\n%s\nresources: {cpu: 100m, memory: 32Mi}\nports: [{name: http, port: 8080}]\nhealth: {http: /, port: http, interval: 200ms, timeout: 150ms, retries: 2}\n", name, replicas, args)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := d.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: spec, File: name + ".yaml"})
	if err != nil {
		d.t.Fatalf("deploy %s: %v", name, err)
	}
	var last masterapi.Progress
	if err := d.m.Client.Watch(ctx, name, resp.Revision, func(p masterapi.Progress) error { last = p; return nil }); err != nil || last.Status != "deployed" {
		d.t.Fatalf("deploy %s: %v, %+v", name, err, last)
	}
}

// waitMetrics waits until the master holds samples of every node and of
// both apps, so that the graphs have something to draw.
func (d *dashboard) waitMetrics() {
	d.t.Helper()
	want := map[string]string{"web": masterapi.MetricsApp, "evil": masterapi.MetricsApp}
	for _, n := range d.nodes {
		want[n] = masterapi.MetricsNode
	}
	deadline := time.Now().Add(90 * time.Second)
	for name, kind := range want {
		for {
			m, err := d.m.Client.MetricsHistory(context.Background(), masterapi.MetricsQuery{Kind: kind, Name: name, Since: time.Now().Add(-time.Hour)})
			if err == nil && known(m, "cpu") > 0 {
				break
			}
			if time.Now().After(deadline) {
				d.t.Fatalf("no cpu samples of %s %s within 90s: %v", kind, name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func known(m masterapi.Metrics, field string) int {
	n := 0
	for i, f := range m.Fields {
		if f.Name == field {
			for _, v := range m.Avg[i] {
				if !math.IsNaN(float64(v)) {
					n++
				}
			}
		}
	}
	return n
}

// startUI runs `moat ui --no-open` against the master and reads its URL.
func (d *dashboard) startUI() {
	d.t.Helper()
	cmd := exec.Command(testcluster.Moat(d.t), "ui", "--no-open")
	cmd.Env = append(os.Environ(), "MOAT_MASTER=local", "MOAT_MASTER_SOCKET="+d.m.Socket, "HOME="+d.t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr testcluster.LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if d.t.Failed() {
			d.t.Logf("moat ui stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		line <- s.Text()
		for s.Scan() {
		}
	}()
	select {
	case l := <-line:
		u := regexp.MustCompile(`^dashboard: (http://127\.0\.0\.1:[0-9]+)/\?token=[A-Za-z0-9_-]{43}$`).FindStringSubmatch(l)
		if u == nil {
			d.t.Fatalf("moat ui printed %q", l)
		}
		d.url, d.base = strings.TrimPrefix(l, "dashboard: "), u[1]
	case <-time.After(30 * time.Second):
		d.t.Fatalf("moat ui printed no URL within 30s: %s", stderr.String())
	}
}

// browser is a headless Chromium with a fresh profile that records every
// console error, uncaught exception, failed request, error status and
// dialog of its pages.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	shots    string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install chromium; scripts/test installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{shots: artifacts(t)}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	b.ctx = ctx
	return b
}

func (b *browser) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			p = "console error"
		}
	case *runtime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			p = "console error (" + string(ev.Entry.Source) + "): " + ev.Entry.Text
		}
	case *network.EventLoadingFailed:
		p = "request failed: " + ev.ErrorText
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			p = fmt.Sprintf("%s: status %d", ev.Response.URL, ev.Response.Status)
		}
	case *page.EventJavascriptDialogOpening:
		p = "a dialog opened: " + ev.Message
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// artifacts is where the screenshots go: $MOAT_TEST_ARTIFACTS/TEST, else
// a directory named after the test in the temporary directory. They are
// kept.
func artifacts(t *testing.T) string {
	root := os.Getenv("MOAT_TEST_ARTIFACTS")
	if root == "" {
		root = os.TempDir()
	}
	dir := filepath.Join(root, "moat-"+strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// visit loads a page, checks it loaded cleanly, keeps a screenshot, and
// returns its text.
func (b *browser) visit(t *testing.T, url, shot string) string {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, shot+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.body.innerText"))
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("%s: %s", url, p)
	}
	b.problems = nil
	return text
}

func (b *browser) eval(t *testing.T, js string) int {
	t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return n
}

func contains(t *testing.T, page, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: no %q in:\n%s", page, w, text)
		}
	}
}

// TestDashboardInBrowser loads every page of the dashboard from a real
// master with a real cluster in headless Chromium, as `moat ui` serves it:
// the content is there, graphs are drawn from the master's history, no
// page logs an error or fails a request, and what an app prints stays
// text. Then the token: nothing is served without it.
func TestDashboardInBrowser(t *testing.T) {
	d := startDashboard(t)
	t.Run("pages", func(t *testing.T) { testPages(t, d) })
	t.Run("token", func(t *testing.T) { testToken(t, d) })
}

func testPages(t *testing.T, d *dashboard) {
	b := newBrowser(t)
	n1 := d.nodes[0]

	text := b.visit(t, d.url, "overview")
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	if loc != d.base+"/" {
		t.Errorf("after the token the browser is at %q, want %q (no token in the address bar)", loc, d.base+"/")
	}
	contains(t, "overview", text, d.nodes[0], d.nodes[1], "web", "evil", "Active alerts", "Recent events")
	if n := b.eval(t, `[...document.querySelectorAll("#apps td.ready")].filter(e => e.textContent == "2/2").length`); n != 1 {
		t.Errorf("overview: %d apps shown 2/2 ready, want 1 (web)", n)
	}
	if n := b.eval(t, `[...document.querySelectorAll("#nodes path.sparkline")].filter(p => /^M[0-9.]+ [0-9.]+/.test(p.getAttribute("d"))).length`); n < 2 {
		t.Errorf("overview: %d sparklines drawn, want one per node at least", n)
	}

	text = b.visit(t, d.base+"/nodes/"+n1, "node")
	contains(t, "node", text, n1, "Replicas", "CPU", "Memory", "Disk space", "Network")
	if n := b.eval(t, `[...document.querySelectorAll("svg.chart path.avg")].filter(p => p.getAttribute("d").startsWith("M")).length`); n < 3 {
		t.Errorf("node page: %d graphs with a line, want CPU, memory and disk at least", n)
	}

	text = b.visit(t, d.base+"/apps/web", "app-web")
	contains(t, "app", text, "web", "2/2", "Revisions", "Log tail", "serving on :8080", "CPU per replica")
	if n := b.eval(t, `document.querySelectorAll("#replicas tbody tr.state-ready").length`); n != 2 {
		t.Errorf("app page: %d ready replicas listed, want 2", n)
	}
	if n := b.eval(t, `document.querySelectorAll("svg.chart path.avg").length`); n < 1 {
		t.Errorf("app page: no graph with a line")
	}

	text = b.visit(t, d.base+"/apps/evil", "app-evil")
	contains(t, "evil app", text, hostileLine)
	if n := b.eval(t, `document.scripts.length + document.querySelectorAll("pre.logs img, pre.logs script").length`); n != 0 {
		t.Errorf("the evil app's log line became %d elements", n)
	}

	text = b.visit(t, d.base+"/graphs/node/"+n1+"/cpu", "graph-node-cpu")
	contains(t, "graph page", text, "Daily", "Weekly", "Monthly", "Yearly")
	if n := b.eval(t, `document.querySelectorAll("figure.graph svg.chart").length`); n != 4 {
		t.Errorf("graph page: %d graphs, want 4", n)
	}
	if n := b.eval(t, `document.querySelectorAll("svg.chart path.avg").length`); n != 4 {
		t.Errorf("graph page: %d views with a line, want 4 (the newest samples show in every view)", n)
	}
	for _, sp := range []string{"week", "month", "year"} {
		b.visit(t, d.base+"/apps/web?range="+sp, "app-web-"+sp)
	}
}

// testToken: `moat ui` serves nothing without its token, nor to a request
// naming another host (DNS rebinding), token or not.
func testToken(t *testing.T, d *dashboard) {
	tests := []struct {
		name, url, host string
		code            int
	}{
		{"no token", d.base + "/", "", 403},
		{"no token, a page", d.base + "/apps/web", "", 403},
		{"wrong token", d.base + "/?token=AAAA", "", 403},
		{"another host with the token", d.url, "rebound.example:80", 403},
		{"the token", d.url, "", 303},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
		})
	}
	// And in a browser: without the token, a refusal; with it, the page.
	b := newBrowser(t)
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(d.base+"/"))
	if err != nil || resp.Status != 403 {
		t.Errorf("the browser without the token: %v %+v", err, resp)
	}
	b.mu.Lock()
	if !strings.Contains(strings.Join(b.problems, "\n"), "status 403") {
		t.Errorf("the browser's listener saw no 403: %q", b.problems) // it would miss a page's failures too
	}
	b.problems = nil // the 403 just asserted
	b.mu.Unlock()
	text := b.visit(t, d.url, "token")
	contains(t, "with the token", text, d.nodes[0])
	text = b.visit(t, d.base+"/apps/web", "token-cookie")
	contains(t, "with the cookie", text, "2/2")
}
