package master_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestDefaultTenantCannotNameAnotherTenantsApp: an app's store key is
// "tenant.app", and the default tenant's keys are bare names, so a caller
// acting in the default tenant who names an app "blog.web" must not reach
// tenant blog's app web: not its history, metrics, logs, nor a scale. A
// cluster admin (acting in "*") still may. Over the real API, as remote
// users on `ssh moat@HOST api`.
func TestDefaultTenantCannotNameAnotherTenantsApp(t *testing.T) {
	testcluster.RequireRoot(t)
	h := testcluster.NewMasterHost(t, 0)
	ctx := context.Background()
	if _, err := h.Master.Client.AddTenant(ctx, "blog"); err != nil {
		t.Fatal(err)
	}
	h.Master.ImportProbe(t, "probe:1")
	blog := h.Master.Client.InTenant("blog")
	if _, err := blog.Deploy(ctx, masterapi.DeployRequest{Spec: spec("web", 0)}); err != nil {
		t.Fatal(err)
	}
	dee := h.HTTPClient(h.AddUser("dee", "deployer@default"))
	boss := h.HTTPClient(h.AddUser("boss", "admin@*"))

	call := func(c *http.Client, tenant, method, path, body string) (int, string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, method, "http://master"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tenant != "" {
			req.Header.Set("Moat-Tenant", tenant)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(bytes.TrimSpace(b))
	}
	for _, tenant := range []string{"", "default"} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v1/apps/blog.web/revisions", ""},
			{"GET", "/v1/apps/blog.web/revisions/1/progress", ""},
			{"GET", "/v1/metrics/app/blog.web", ""},
			{"GET", "/v1/apps/blog.web/logs", ""},
			{"POST", "/v1/apps/blog.web/scale", `{"replicas":0}`},
			{"POST", "/v1/apps/blog.web/rollback", `{}`},
			{"DELETE", "/v1/apps/blog.web", ""},
		} {
			if code, body := call(dee, tenant, r.method, r.path, r.body); code != http.StatusNotFound && code != http.StatusForbidden {
				t.Errorf("a default tenant's deployer (Moat-Tenant %q): %s %s: %d %s; want 404 (or 403)", tenant, r.method, r.path, code, body)
			}
		}
	}
	revs, err := blog.Revisions(ctx, "web")
	if err != nil || len(revs) != 1 {
		t.Errorf("blog's web after the default tenant's tries: %+v %v; want its one revision", revs, err)
	}
	// The cluster's view still names it by its key.
	if code, body := call(boss, "*", "GET", "/v1/apps/blog.web/revisions", ""); code != http.StatusOK || !strings.Contains(body, `"revision":1`) {
		t.Errorf("a cluster admin reads blog.web's revisions: %d %s", code, body)
	}
}
