package httpapi

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
)

// TestAudited: a mutating request is recorded before it is carried out
// (its intent) and after (its outcome, pointing at the intent); a read is
// not recorded; when the intent cannot be written, the request fails and
// the control plane is never called.
func TestAudited(t *testing.T) {
	notFound := fmt.Errorf("app %q: %w", "web", errs.ErrNotFound)
	tests := []struct {
		name, method, path, body string
		err, auditErr            error
		wantStatus               int
		wantCalls                []string
		wantAudit                []masterapi.AuditEntry
	}{
		{name: "deploy", method: "POST", path: "/v1/apps", body: `{"spec":"name: web","file":"web.yaml"}`, wantStatus: 201,
			wantCalls: []string{`deploy "name: web" web.yaml by root`},
			wantAudit: []masterapi.AuditEntry{
				{Seq: 1, User: "root", Credential: "local socket", Action: "deploy", Target: "web", Detail: "file web.yaml spec sha256:a8cf5244709c", Result: "started"},
				{Seq: 2, User: "root", Credential: "local socket", Action: "deploy", Target: "web", Detail: "revision 3", Result: "ok", Intent: 1}}},
		{name: "scale", method: "POST", path: "/v1/apps/web/scale", body: `{"replicas":5}`, wantStatus: 200,
			wantCalls: []string{"scale web to 5 by root"},
			wantAudit: []masterapi.AuditEntry{
				{Seq: 1, User: "root", Credential: "local socket", Action: "scale", Target: "web", Detail: "replicas 5", Result: "started"},
				{Seq: 2, User: "root", Credential: "local socket", Action: "scale", Target: "web", Detail: "revision 4", Result: "ok", Intent: 1}}},
		{name: "failed", method: "DELETE", path: "/v1/apps/web", err: notFound, wantStatus: 404,
			wantCalls: []string{"rm web by root"},
			wantAudit: []masterapi.AuditEntry{
				{Seq: 1, User: "root", Credential: "local socket", Action: "rm", Target: "web", Result: "started"},
				{Seq: 2, User: "root", Credential: "local socket", Action: "rm", Target: "web", Result: `failed: app "web": not found`, Intent: 1}}},
		{name: "a read is not recorded", method: "GET", path: "/v1/apps/web/revisions/2/progress", wantStatus: 200,
			wantCalls: []string{"progress web 2"}},
		{name: "the log cannot record it", method: "POST", path: "/v1/nodes/n1/drain", auditErr: errors.New("disk full"),
			wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{err: tt.err, auditErr: tt.auditErr}
			w := serve(t, f, tt.method, tt.path, tt.body)
			if w.Code != tt.wantStatus {
				t.Errorf("%s %s: %d %q; want %d", tt.method, tt.path, w.Code, w.Body, tt.wantStatus)
			}
			if d := cmp.Diff(tt.wantCalls, f.calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantAudit, f.audit); d != "" {
				t.Errorf("audit (-want +got):\n%s", d)
			}
		})
	}
}
