package master_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterapi"
)

// TestPoolCommands: moat pool add, ls, set, scale and rm and moat cost
// against a real master, as an operator types them: the token read from
// a file, sealed, said to be set and never shown — not by pool ls --json,
// not in the audit log, the master's log or its database files; bad specs
// refused naming the field and changing nothing.
func TestPoolCommands(t *testing.T) {
	m := bareMaster(t)
	moat := moatCLI(t, m)
	run := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := moat(args...)
		if code != want {
			t.Fatalf("moat %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	const token = "hcloud-SECRET-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pools := func() map[string]masterapi.Pool {
		t.Helper()
		out := run(0, "pool", "ls", "--json")
		if strings.Contains(out, token) {
			t.Fatalf("moat pool ls --json shows the token:\n%s", out)
		}
		var ps []masterapi.Pool
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("pool ls --json: %v\n%s", err, out)
		}
		byName := map[string]masterapi.Pool{}
		for _, p := range ps {
			byName[p.Name] = p
		}
		return byName
	}
	if ps := pools(); len(ps) != 1 || ps["static"].Provider != "static" || ps["static"].Cluster == "" {
		t.Fatalf("a new master's pools: %+v", ps)
	}

	run(0, "pool", "add", "web", "--provider", "hetzner", "--min", "1", "--max", "3", "--type", "cx22", "--type", "cx32",
		"--region", "fsn1", "--region", "nbg1", "--label", "zone=eu", "--token-file", tokenFile, "--endpoint", "http://127.0.0.1:9/v1")
	web := pools()["web"]
	if !web.TokenSet || web.Desired != 1 || web.Max != 3 || strings.Join(web.Types, ",") != "cx22,cx32" ||
		strings.Join(web.Regions, ",") != "fsn1,nbg1" || web.Labels["zone"] != "eu" || web.MaxCreatesPerHour != 6 {
		t.Errorf("web as added: %+v", web)
	}
	table := run(0, "pool", "ls")
	for _, want := range []string{"web", "hetzner", "0/1", "1-3", "cx22,cx32", "fsn1,nbg1", "set"} {
		if !strings.Contains(table, want) {
			t.Errorf("moat pool ls does not show %q:\n%s", want, table)
		}
	}

	// Refusals name what is wrong and change nothing.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pool", "add", "bad", "--provider", "hetzner", "--max", "2", "--type", "cx22", "--region", "fsn1"}, "token"},
		{[]string{"pool", "add", "bad", "--max", "2"}, "--provider"},
		{[]string{"pool", "add", "bad", "--provider", "aws", "--max", "2", "--type", "x"}, "provider"},
		{[]string{"pool", "add", "web", "--provider", "local", "--max", "2", "--type", "x"}, "exists"},
		{[]string{"pool", "set", "web", "--max", "0"}, "max"},
		{[]string{"pool", "set", "web", "--min", "5"}, "min"},
		{[]string{"pool", "set", "web", "--provider", "digitalocean"}, "provider"},
		{[]string{"pool", "set", "web", "--label", "moat-pool=x"}, "label"},
		{[]string{"pool", "set", "web", "--idle-after", "0s"}, "idle-after"},
		{[]string{"pool", "scale", "web=4"}, "1 to 3"},
		{[]string{"pool", "scale", "web=2", "static=1"}, "static"},
		{[]string{"pool", "scale", "web"}, "POOL=N"},
		{[]string{"pool", "rm", "static"}, "built in"},
	} {
		out, errOut, code := moat(c.args...)
		if code == 0 || !strings.Contains(out+errOut, c.want) {
			t.Errorf("moat %s: exit %d %s%s; want a failure naming %s", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if got := pools()["web"]; got.Max != 3 || got.Min != 1 || got.Desired != 1 || !got.TokenSet {
		t.Errorf("web after refused changes: %+v", got)
	}

	run(0, "pool", "scale", "web=3")
	run(0, "pool", "set", "web", "--max", "2", "--image", "12345", "--idle-after", "30s", "--keep-billed-hour=false")
	web = pools()["web"]
	if web.Desired != 2 || web.Max != 2 || web.Image != "12345" || time.Duration(web.IdleAfter) != 30*time.Second || web.KeepBilledHour || web.MaxCreatesPerHour != 4 || !web.TokenSet {
		t.Errorf("web after set: %+v", web)
	}
	run(0, "pool", "add", "boxes", "--provider", "static")
	run(0, "pool", "add", "try", "--provider", "local", "--max", "4", "--type", "local-1")
	if try := pools()["try"]; try.LocalDir != filepath.Join(m.Dir, "pools", "try") || try.TokenSet {
		t.Errorf("local pool: %+v", try)
	}
	if out, errOut, code := moat("pool", "set", "try", "--token-file", tokenFile); code == 0 || !strings.Contains(out+errOut, "no API token") || strings.Contains(out+errOut, token) {
		t.Errorf("a token for a local pool: exit %d %s%s", code, out, errOut)
	}
	// Nothing runs: moat cost lists nothing.
	var cost masterapi.Cost
	if err := json.Unmarshal([]byte(run(0, "cost", "--json")), &cost); err != nil || len(cost.Pools) != 0 {
		t.Errorf("moat cost --json: %+v %v", cost, err)
	}
	run(0, "cost")

	for _, name := range []string{"web", "boxes", "try"} {
		if out := run(0, "pool", "rm", name); !strings.Contains(out, "removed") {
			t.Errorf("moat pool rm %s: %s", name, out)
		}
	}
	if ps := pools(); len(ps) != 1 {
		t.Errorf("pools after rm: %+v", ps)
	}

	// The audit log has every change, and never the token.
	log := auditJSON(t, moat)
	actions := map[string]bool{}
	for _, e := range log {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), token) {
			t.Errorf("audit entry holds the token: %s", b)
		}
		actions[e.Action+" "+e.Target] = true
	}
	for _, want := range []string{"pool add web", "pool set web", "pool scale ", "pool rm web", "pool add boxes"} {
		if !actions[want] {
			t.Errorf("the audit log has no %q: %v", want, actions)
		}
	}
	if strings.Contains(m.Log(), token) {
		t.Error("the master's log holds the token")
	}
	m.Kill9()
	for _, f := range []string{master.DBFile, master.DBFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(m.Dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), token) {
			t.Errorf("%s holds the token", f)
		}
	}
	st, err := os.Stat(filepath.Join(m.Dir, master.PoolTokenKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", master.PoolTokenKeyFile, st, err)
	}
}
