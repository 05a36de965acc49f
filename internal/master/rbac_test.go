package master_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/master/httpapi"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// matrixRequests are a request for every route of the API, which changes
// nothing even when allowed: absent targets, invalid bodies, dry runs.
// Root's answer to each is what every allowed caller must get.
var matrixRequests = map[string]struct{ path, body string }{
	"GET /v1/ping":   {"/v1/ping", ""},
	"GET /v1/whoami": {"/v1/whoami", ""},

	"GET /v1/apps":                                {"/v1/apps", ""},
	"GET /v1/replicas":                            {"/v1/replicas", ""},
	"GET /v1/apps/{app}/revisions":                {"/v1/apps/nosuch/revisions", ""},
	"GET /v1/apps/{app}/revisions/{rev}/progress": {"/v1/apps/nosuch/revisions/1/progress", ""},
	"GET /v1/apps/{app}/logs":                     {"/v1/apps/nosuch/logs", ""},
	"POST /v1/apps":                               {"/v1/apps", `{"spec":"name: [unclosed"}`},
	"POST /v1/apps/{app}/scale":                   {"/v1/apps/nosuch/scale", `{"replicas":1}`},
	"POST /v1/apps/{app}/rollback":                {"/v1/apps/nosuch/rollback", `{}`},
	"POST /v1/apps/{app}/promote":                 {"/v1/apps/nosuch/promote", ""},
	"DELETE /v1/apps/{app}":                       {"/v1/apps/nosuch", ""},
	"POST /v1/apps/{app}/dial":                    {"/v1/apps/nosuch/dial?port=8080", ""},

	"GET /v1/nodes":                  {"/v1/nodes", ""},
	"POST /v1/nodes":                 {"/v1/nodes", `{}`},
	"DELETE /v1/nodes/{node}":        {"/v1/nodes/nosuch", ""},
	"POST /v1/nodes/{node}/cordon":   {"/v1/nodes/nosuch/cordon", ""},
	"POST /v1/nodes/{node}/uncordon": {"/v1/nodes/nosuch/uncordon", ""},
	"POST /v1/nodes/{node}/drain":    {"/v1/nodes/nosuch/drain", ""},
	"GET /v1/nodes/{node}/audit":     {"/v1/nodes/nosuch/audit", ""},
	"POST /v1/nodes/{node}/dial":     {"/v1/nodes/nosuch/dial?container=c&port=8080", ""},
	"GET /v1/key":                    {"/v1/key", ""},

	"GET /v1/metrics/node/{name}":    {"/v1/metrics/node/nosuch", ""},
	"GET /v1/metrics/app/{name}":     {"/v1/metrics/app/nosuch", ""},
	"GET /v1/metrics/replica/{name}": {"/v1/metrics/replica/nosuch-abcdef", ""},
	"GET /v1/metrics/route/{name}":   {"/v1/metrics/route/nosuch.example", ""},
	"GET /v1/metrics/latest":         {"/v1/metrics/latest", ""},
	"GET /v1/prometheus":             {"/v1/prometheus", ""},

	"GET /v1/images":               {"/v1/images", ""},
	"GET /v1/images/{ref...}":      {"/v1/images/nosuch:1", ""},
	"POST /v1/images/import":       {"/v1/images/import", "not an archive"},
	"POST /v1/signatures/{ref...}": {"/v1/signatures/nosuch:1", "not a signature"},
	"DELETE /v1/images/{ref...}":   {"/v1/images/nosuch:1", ""},
	"POST /v1/images/gc":           {"/v1/images/gc", `{"dryRun":true}`},
	"GET /v1/stats":                {"/v1/stats", ""},
	"POST /v1/blobs/missing":       {"/v1/blobs/missing", `{"digests":[]}`},
	"PUT /v1/blobs/{digest}":       {"/v1/blobs/sha256:nosuch?offset=x", "bytes"},
	"POST /v1/images/assemble":     {"/v1/images/assemble", `{"bogus":1}`},

	"GET /v1/users":                              {"/v1/users", ""},
	"POST /v1/users":                             {"/v1/users", `{"name":"Not A Name"}`},
	"DELETE /v1/users/{user}":                    {"/v1/users/nosuch", ""},
	"POST /v1/users/{user}/keys":                 {"/v1/users/nosuch/keys", `{"key":"not a key"}`},
	"DELETE /v1/users/{user}/keys/{fingerprint}": {"/v1/users/nosuch/keys/SHA256:nosuch", ""},
	"PUT /v1/users/{user}/roles/{tenant}":        {"/v1/users/nosuch/roles/shop", `{"role":"viewer","tenant":"shop"}`},
	"DELETE /v1/users/{user}/roles/{tenant}":     {"/v1/users/nosuch/roles/shop", ""},
	"GET /v1/cas":                                {"/v1/cas", ""},
	"POST /v1/cas":                               {"/v1/cas", `{"name":"ca","key":"not a key"}`},
	"DELETE /v1/cas/{ca}":                        {"/v1/cas/nosuch", ""},

	"GET /v1/tenants":                {"/v1/tenants", ""},
	"POST /v1/tenants":               {"/v1/tenants", `{"name":"Not A Name"}`},
	"GET /v1/tenants/{tenant}":       {"/v1/tenants/shop", ""},
	"DELETE /v1/tenants/{tenant}":    {"/v1/tenants/nosuch", ""},
	"PUT /v1/tenants/{tenant}/quota": {"/v1/tenants/nosuch/quota", `{}`},

	"GET /v1/alerts":                    {"/v1/alerts", ""},
	"GET /v1/alerts/webhooks":           {"/v1/alerts/webhooks", ""},
	"POST /v1/alerts/webhooks":          {"/v1/alerts/webhooks", `{"name":"Not A Name!","url":"ftp://x"}`},
	"DELETE /v1/alerts/webhooks/{name}": {"/v1/alerts/webhooks/nosuch", ""},

	"GET /v1/pools":           {"/v1/pools", ""},
	"POST /v1/pools":          {"/v1/pools", `{"name":"Not A Name","provider":"local"}`},
	"PATCH /v1/pools/{pool}":  {"/v1/pools/nosuch", `{"max":2}`},
	"DELETE /v1/pools/{pool}": {"/v1/pools/nosuch", ""},
	"POST /v1/pools/scale":    {"/v1/pools/scale", `{"desired":{"nosuch":1}}`},
	"GET /v1/cost":            {"/v1/cost", ""},
	"GET /v1/autoscaler":      {"/v1/autoscaler", ""},

	"GET /v1/apps/{app}/secrets":           {"/v1/apps/nosuch/secrets", ""},
	"PUT /v1/apps/{app}/secrets/{name}":    {"/v1/apps/nosuch/secrets/pw", `{"bogus":1}`},
	"DELETE /v1/apps/{app}/secrets/{name}": {"/v1/apps/nosuch/secrets/pw", ""},
	"GET /v1/secrets":                      {"/v1/secrets", ""},
	"PUT /v1/secrets":                      {"/v1/secrets", "not json"},

	"GET /v1/audit":        {"/v1/audit?limit=1", ""},
	"GET /v1/audit/verify": {"/v1/audit/verify", ""},

	"GET /v1/events": {"/v1/events?limit=1", ""},

	"GET /debug/pprof/":        {"/debug/pprof/", ""},
	"GET /debug/pprof/profile": {"/debug/pprof/profile?seconds=1", ""},
	"GET /debug/progress":      {"/debug/progress", ""},
}

// matrixCallers are who asks, each acting in tenant shop; the names are
// the columns of README's role table.
var matrixCallers = []struct {
	user, column string
	roles        []access.Binding
}{
	{"viewer1", "viewer", []access.Binding{{Tenant: "shop", Role: access.Viewer}}},
	{"deployer1", "deployer", []access.Binding{{Tenant: "shop", Role: access.Deployer}}},
	{"admin1", "admin", []access.Binding{{Tenant: "shop", Role: access.Admin}}},
	{"boss", "cluster admin", []access.Binding{{Tenant: "*", Role: access.Admin}}},
	{"blogadmin", "another tenant's admin", []access.Binding{{Tenant: "blog", Role: access.Admin}}},
	{"nobody", "no role", nil},
}

// TestRBACMatrix: every route of the master's API × every role, each
// request over real OpenSSH to the master's host (ssh moat@HOST api, the
// user found by the master from the key sshd accepted), allowed or
// refused exactly as README's role table says. An allowed caller gets what root on the
// local socket gets; a refused one 403 naming the action, and nothing
// changes.
func TestRBACMatrix(t *testing.T) {
	testcluster.RequireRoot(t)
	documented := readRoleTable(t)
	routes := httpapi.Routes()
	for route := range routes {
		if _, ok := matrixRequests[route]; !ok {
			t.Errorf("route %s has no request in the matrix", route)
		}
	}
	for route := range matrixRequests {
		if _, ok := routes[route]; !ok {
			t.Errorf("the matrix has a request for %s, which the API does not serve", route)
		}
	}
	if t.Failed() {
		return
	}

	h := testcluster.NewMasterHost(t, 0)
	root := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.Master.Socket)
	}}}
	for _, tenant := range []string{"shop", "blog"} {
		mustDo(t, root, "POST", "/v1/tenants", fmt.Sprintf(`{"name":%q}`, tenant), 201)
	}
	users := map[string]*testcluster.User{}
	clients := map[string]*http.Client{}
	for _, c := range matrixCallers {
		var roles []string
		for _, r := range c.roles {
			roles = append(roles, string(r.Role)+"@"+r.Tenant)
		}
		users[c.user] = h.AddUser(c.user, roles...)
		clients[c.user] = h.HTTPClient(users[c.user])
	}
	before := matrixState(t, root)

	// Root's answers first, then each caller's, callers side by side
	// (each request is an SSH login of its own).
	type answer struct {
		code int
		body string
	}
	names := make([]string, 0, len(routes))
	rootGets := map[string]answer{}
	for r := range routes {
		names = append(names, r)
		method, _, _ := strings.Cut(r, " ")
		code, body := do(t, root, method, matrixRequests[r].path, matrixRequests[r].body)
		if code == http.StatusForbidden || code >= 500 {
			t.Errorf("%s: root gets %d %s", r, code, body)
		}
		if _, ok := documented[routes[r]]; !ok {
			t.Errorf("%s: README's role table has no row for %s", r, routes[r])
		}
		rootGets[r] = answer{code, body}
	}
	if t.Failed() {
		return
	}
	sort.Strings(names)
	t.Run("routes", func(t *testing.T) {
		for _, c := range matrixCallers {
			t.Run(c.user, func(t *testing.T) {
				t.Parallel()
				for _, route := range names {
					action, want := routes[route], rootGets[route]
					method, _, _ := strings.Cut(route, " ")
					req := matrixRequests[route]
					got, body := do(t, clients[c.user], method, req.path, req.body)
					switch allowed := documented[action][c.column]; {
					case allowed && got != want.code:
						t.Errorf("%s (%s) by %s: %d %s; README allows it: want root's %d %s", route, action, c.column, got, body, want.code, want.body)
					case !allowed && (got != http.StatusForbidden || !strings.Contains(body, string(action))):
						t.Errorf("%s (%s) by %s: %d %s; README refuses it: want 403 naming %s", route, action, c.column, got, body, action)
					}
				}
			})
		}
	})
	checkWhoAmI(t, h.Master, clients)
	checkCommands(t, h, users, documented)
	if after := matrixState(t, root); after != before {
		t.Errorf("the matrix changed the master's state:\nbefore %s\nafter  %s", before, after)
	}
}

// readRoleTable reads README's role table: for each action, the columns
// that may.
func readRoleTable(t *testing.T) map[access.Action]map[string]bool {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- role table:")
	if !ok {
		t.Fatal("README.md has no role table")
	}
	rest, _, _ = strings.Cut(rest, "<!-- end of role table -->")
	lines := strings.Split(strings.TrimSpace(rest), "\n")[1:] // after the marker's own line
	cells := func(line string) []string {
		f := strings.Split(strings.Trim(line, "|"), "|")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		return f
	}
	header := cells(lines[0])
	out := map[access.Action]map[string]bool{}
	for _, line := range lines[2:] {
		f := cells(line)
		row := map[string]bool{}
		for i := 2; i < len(header) && i < len(f); i++ {
			row[header[i]] = f[i] == "yes"
		}
		out[access.Action(strings.Trim(f[0], "`"))] = row
	}
	for _, c := range matrixCallers {
		if _, ok := out[access.Ping][c.column]; !ok {
			t.Fatalf("README's role table has no column %q", c.column)
		}
	}
	return out
}

// do sends a request acting in tenant shop; it returns the status and
// body.
func do(t *testing.T, c *http.Client, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://master"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Moat-Tenant", "shop")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

func mustDo(t *testing.T, c *http.Client, method, path, body string, want int) {
	t.Helper()
	if got, b := do(t, c, method, path, body); got != want {
		t.Fatalf("%s %s: %d %s; want %d", method, path, got, b, want)
	}
}

// matrixState is what the matrix must leave as it found: apps, nodes,
// images, users, CAs, tenants, as root sees them.
func matrixState(t *testing.T, root *http.Client) string {
	var b strings.Builder
	for _, path := range []string{"/v1/apps", "/v1/nodes", "/v1/images", "/v1/users", "/v1/cas", "/v1/tenants", "/v1/pools"} {
		code, body := do(t, root, "GET", path, "")
		fmt.Fprintf(&b, "%s %d %s\n", path, code, body)
	}
	return b.String()
}

// checkWhoAmI: each user is who the master found from their key, in the
// tenant they asked for, with the roles they were given; moat whoami on
// the local socket is root, who may do everything.
func checkWhoAmI(t *testing.T, m *testcluster.Master, clients map[string]*http.Client) {
	for _, c := range matrixCallers {
		code, body := do(t, clients[c.user], "GET", "/v1/whoami", "")
		var me masterapi.WhoAmI
		if err := json.Unmarshal([]byte(body), &me); code != 200 || err != nil {
			t.Errorf("whoami as %s: %d %s", c.user, code, body)
			continue
		}
		want := masterapi.WhoAmI{User: c.user, Credential: me.Credential, Tenant: "shop", Roles: []masterapi.RoleBinding{}}
		for _, r := range c.roles {
			want.Roles = append(want.Roles, masterapi.RoleBinding{Tenant: r.Tenant, Role: string(r.Role)})
		}
		if !strings.HasPrefix(me.Credential, "SHA256:") {
			t.Errorf("whoami as %s: credential %q; want the key's fingerprint", c.user, me.Credential)
		}
		if d := cmp.Diff(want, me); d != "" {
			t.Errorf("whoami as %s (-want +got):\n%s", c.user, d)
		}
	}
	cmd := exec.Command(testcluster.Moat(t), "whoami")
	cmd.Env = append(os.Environ(), "MOAT_MASTER=local", "MOAT_MASTER_SOCKET="+m.Socket)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "root") || !strings.Contains(string(out), "everything") {
		t.Errorf("moat whoami on the local socket: %v\n%s", err, out)
	}
}

// checkCommands: the CLI, run as each user against the remote master
// (MOAT_MASTER=moat@HOST over the operator's ssh), succeeds or fails as
// README's role table says, and a refusal names the action.
func checkCommands(t *testing.T, h *testcluster.MasterHost, users map[string]*testcluster.User, documented map[access.Action]map[string]bool) {
	commands := []struct {
		args   []string
		action access.Action
	}{
		{[]string{"apps"}, access.AppList},
		{[]string{"node", "ls"}, access.NodeList},
		{[]string{"user", "ls"}, access.UserList},
		{[]string{"whoami"}, access.WhoAmI},
		{[]string{"pool", "ls"}, access.PoolList},
		{[]string{"cost"}, access.CostRead},
	}
	// A context acting in tenant shop, as an operator would add it.
	config := t.TempDir()
	moat := func(u *testcluster.User, args ...string) ([]byte, error) {
		cmd := exec.Command(testcluster.Moat(t), args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+config)
		if u != nil {
			// All but the destination; no shared connection, which would
			// outlive the test and, keyed by host and login, not by key,
			// carry one user's commands on another's.
			ssh := h.SSHArgs(u)
			ssh = append(ssh[:len(ssh)-1], "-o", "ControlMaster=no", "-o", "ControlPath=none")
			cmd.Env = append(cmd.Env, "MOAT_MASTER=shop", "MOAT_SSH_COMMAND=ssh "+strings.Join(ssh, " "))
		}
		return cmd.CombinedOutput()
	}
	if out, err := moat(nil, "context", "add", "shop", "moat@"+h.Addr, "--tenant", "shop"); err != nil {
		t.Fatalf("moat context add: %v\n%s", err, out)
	}
	for _, c := range matrixCallers {
		for _, cmd := range commands {
			out, err := moat(users[c.user], cmd.args...)
			allowed := documented[cmd.action][c.column]
			switch {
			case allowed && err != nil:
				t.Errorf("moat %s as %s: %v\n%s; README allows it", strings.Join(cmd.args, " "), c.column, err, out)
			case !allowed && (err == nil || !strings.Contains(string(out), string(cmd.action))):
				t.Errorf("moat %s as %s: %v\n%s; README refuses it: want a failure naming %s", strings.Join(cmd.args, " "), c.column, err, out, cmd.action)
			}
		}
	}
}
