package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// fake is a control plane that records what it was asked. Methods a test
// does not expect panic (the embedded nil interface).
type fake struct {
	ControlPlane
	calls    []string
	progress []masterapi.Progress // what WatchProgress hands out
	err      error                // what calls return (WatchProgress: after progress)
	dialed   net.Conn
	audit    []masterapi.AuditEntry // what AppendAudit kept
	auditErr error                  // what AppendAudit returns
}

func (f *fake) AppendAudit(_ context.Context, e masterapi.AuditEntry) (masterapi.AuditEntry, error) {
	if f.auditErr != nil {
		return e, f.auditErr
	}
	e.Seq = int64(len(f.audit) + 1)
	f.audit = append(f.audit, e)
	return e, nil
}

func (f *fake) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fake) Deploy(_ context.Context, yaml []byte, file, actor string) (masterapi.DeployResponse, error) {
	f.record("deploy %q %s by %s", yaml, file, actor)
	return masterapi.DeployResponse{App: "web", Revision: 3}, f.err
}

func (f *fake) RemoveApp(_ context.Context, app, actor string) error {
	f.record("rm %s by %s", app, actor)
	return f.err
}

func (f *fake) Scale(_ context.Context, app string, n int, actor string) (masterapi.DeployResponse, error) {
	f.record("scale %s to %d by %s", app, n, actor)
	return masterapi.DeployResponse{App: app, Revision: 4}, f.err
}

func (f *fake) Progress(_ context.Context, app string, rev int) (masterapi.Progress, error) {
	f.record("progress %s %d", app, rev)
	return masterapi.Progress{App: app, Revision: rev, Status: "progressing"}, f.err
}

func (f *fake) WatchProgress(_ context.Context, app string, rev int, fn func(masterapi.Progress) error) error {
	f.record("watch %s %d", app, rev)
	for _, p := range f.progress {
		if err := fn(p); err != nil {
			return err
		}
	}
	return f.err
}

func (f *fake) Cordon(_ context.Context, name, verb, actor string) error {
	f.record("%s %s by %s", verb, name, actor)
	return f.err
}

func (f *fake) GC(_ context.Context, req masterapi.GCRequest, actor string) ([]masterapi.GCReport, error) {
	f.record("gc dry=%t by %s", req.DryRun, actor)
	return []masterapi.GCReport{{Where: "master"}}, f.err
}

func (f *fake) DialNode(_ context.Context, node, container string, port int) (net.Conn, error) {
	f.record("dial %s %s %d", node, container, port)
	return f.dialed, f.err
}

func (f *fake) Logs(context.Context, string, nodeapi.LogOptions) (<-chan masterapi.LogLine, error) {
	panic("not to be called")
}

func serve(t *testing.T, f *fake, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	Handler(f, slog.New(slog.DiscardHandler)).ServeHTTP(w, r)
	return w
}

// TestRequests: each request becomes one call on the control plane, with
// the actor the request names; the answer's status and body are the wire
// format's, errors included.
func TestRequests(t *testing.T) {
	notFound := fmt.Errorf("app %q: %w", "web", errs.ErrNotFound)
	tests := []struct {
		name, method, path, body string
		header                   []string
		err                      error
		wantStatus               int
		wantBody                 string
		wantCalls                []string
	}{
		{name: "ping", method: "GET", path: "/v1/ping", wantStatus: 200, wantBody: `{"ok":true}` + "\n"},
		{name: "deploy", method: "POST", path: "/v1/apps", body: `{"spec":"name: web","file":"web.yaml"}`,
			wantStatus: 201, wantBody: `{"app":"web","revision":3,"image":""}` + "\n",
			wantCalls: []string{`deploy "name: web" web.yaml by root`}},
		{name: "a header cannot name another actor", method: "POST", path: "/v1/apps", body: `{"spec":"x"}`, header: []string{"Moat-Actor", "alice"},
			wantStatus: 201, wantCalls: []string{`deploy "x"  by root`}},
		{name: "unknown field", method: "POST", path: "/v1/apps", body: `{"spek":"x"}`,
			wantStatus: 400, wantBody: `spek`},
		{name: "rm", method: "DELETE", path: "/v1/apps/web", wantStatus: 204, wantCalls: []string{"rm web by root"}},
		{name: "rm missing", method: "DELETE", path: "/v1/apps/web", err: notFound,
			wantStatus: 404, wantBody: `{"error":"app \"web\": not found"}` + "\n", wantCalls: []string{"rm web by root"}},
		{name: "scale", method: "POST", path: "/v1/apps/web/scale", body: `{"replicas":5}`,
			wantStatus: 200, wantCalls: []string{"scale web to 5 by root"}},
		{name: "drain", method: "POST", path: "/v1/nodes/n1/drain", header: []string{"Moat-Actor", "bob"},
			wantStatus: 204, wantCalls: []string{"drain n1 by root"}},
		{name: "gc", method: "POST", path: "/v1/images/gc", body: `{"dryRun":true}`,
			wantStatus: 200, wantBody: `[{"where":"master","blobs":0,"layers":0,"bytes":0}]` + "\n", wantCalls: []string{"gc dry=true by root"}},
		{name: "progress", method: "GET", path: "/v1/apps/web/revisions/2/progress", wantStatus: 200,
			wantBody: `"status":"progressing"`, wantCalls: []string{"progress web 2"}},
		{name: "revision not a number", method: "GET", path: "/v1/apps/web/revisions/two/progress",
			wantStatus: 400, wantBody: `"two\" is not a number`},
		{name: "dial without a port", method: "POST", path: "/v1/nodes/n1/dial?port=x",
			wantStatus: 400, wantBody: `"x\" is not a port`},
		{name: "log tail not a number", method: "GET", path: "/v1/apps/web/logs?tail=-1",
			wantStatus: 400, wantBody: `want a number of lines`},
		{name: "no such API", method: "GET", path: "/v1/nope",
			wantStatus: 400, wantBody: `{"error":"no API at GET /v1/nope"}` + "\n"},
		{name: "profiler", method: "GET", path: "/debug/pprof/", wantStatus: 200, wantBody: "goroutine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{err: tt.err}
			w := serve(t, f, tt.method, tt.path, tt.body, tt.header...)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("%s %s: %d %q; want %d with %q", tt.method, tt.path, w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if d := cmp.Diff(tt.wantCalls, f.calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
		})
	}
}

// TestWatchProgress: a watch is JSON lines, one per value the control
// plane hands out. An error before the first line is the response's
// status; after it, a last line says the rollout failed, and why.
func TestWatchProgress(t *testing.T) {
	a := masterapi.Progress{App: "web", Revision: 2, Status: "progressing", Desired: 3}
	b := masterapi.Progress{App: "web", Revision: 2, Status: "deployed", Desired: 3, Ready: 3}
	tests := []struct {
		name       string
		progress   []masterapi.Progress
		err        error
		wantStatus int
		wantLines  []string
	}{
		{"to the end", []masterapi.Progress{a, b}, nil, 200, []string{
			`{"app":"web","revision":2,"status":"progressing","desired":3,"current":0,"ready":0,"old":0}`,
			`{"app":"web","revision":2,"status":"deployed","desired":3,"current":0,"ready":3,"old":0}`}},
		{"no such revision", nil, fmt.Errorf("revision 2: %w", errs.ErrNotFound), 404, []string{
			`{"error":"revision 2: not found"}`}},
		{"failing midway", []masterapi.Progress{a}, errors.New("database gone"), 200, []string{
			`{"app":"web","revision":2,"status":"progressing","desired":3,"current":0,"ready":0,"old":0}`,
			`{"app":"web","revision":2,"status":"failed","desired":0,"current":0,"ready":0,"old":0,"message":"database gone"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{progress: tt.progress, err: tt.err}
			w := serve(t, f, "GET", "/v1/apps/web/revisions/2/progress?watch=true", "")
			lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
			if w.Code != tt.wantStatus {
				t.Errorf("status %d; want %d", w.Code, tt.wantStatus)
			}
			if d := cmp.Diff(tt.wantLines, lines); d != "" {
				t.Errorf("lines (-want +got):\n%s", d)
			}
			if ct := w.Header().Get("Content-Type"); tt.wantStatus == 200 && ct != "application/x-ndjson" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestDialUpgrades: dial answers 101 and then carries bytes both ways
// between the client and the connection the control plane opened.
func TestDialUpgrades(t *testing.T) {
	mine, theirs := net.Pipe()
	f := &fake{dialed: mine}
	srv := httptest.NewServer(Handler(f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	go func() { // the container: echoes one line
		line, _ := bufio.NewReader(theirs).ReadString('\n')
		io.WriteString(theirs, "echo "+line)
		theirs.Close()
	}()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/nodes/n1/dial?container=c1&port=8080 HTTP/1.1\r\nHost: m\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", nodeapi.UpgradeProtocol)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != nodeapi.UpgradeProtocol {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	io.WriteString(conn, "hello\n")
	got, _ := io.ReadAll(br)
	if !bytes.Equal(got, []byte("echo hello\n")) {
		t.Errorf("through the dial: %q; want %q", got, "echo hello\n")
	}
	if d := cmp.Diff([]string{"dial n1 c1 8080"}, f.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}
