package master_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAuditFullDisk: the master's state directory on a small tmpfs,
// filled up to the last byte. Mutating requests then fail with 503 naming
// the audit log, and change nothing (a deploy makes no app, a tenant add
// no tenant); reads still answer. Requests go on failing until SQLite
// itself refuses to write (not only the head record). Once the filler is
// removed, requests succeed again and verify passes, every entry from
// before still there.
func TestAuditFullDisk(t *testing.T) {
	m := bareMaster(t)
	onTmpfs(t, m, "32m")
	m.ImportProbe(t, "probe:1")
	moat := moatCLI(t, m)
	api := rawAPI(m.Socket)
	deploy := func(name string) (int, string) {
		body, _ := json.Marshal(masterapi.DeployRequest{Spec: spec(name, 1), File: name + ".yaml"})
		return api("POST", "/v1/apps", string(body))
	}
	if code, body := api("POST", "/v1/tenants", `{"name":"before"}`); code != http.StatusCreated {
		t.Fatalf("tenant add before the disk is full: %d %s", code, body)
	}
	before := auditJSON(t, moat)

	// A checkpoint that leaves the write-ahead log its size: SQLite's
	// next writes go into pages the log has already, which a full disk
	// does not stop.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, master.DBFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var busy, walPages, moved int
	if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &walPages, &moved); err != nil || busy != 0 || moved != walPages {
		t.Fatalf("checkpoint: %v busy %d, %d of %d pages", err, busy, moved, walPages)
	}
	db.Close()
	t.Logf("the write-ahead log has %d pages", walPages)
	filler := filepath.Join(m.Dir, "filler")
	fillUp(t, filler)
	// Each refused request may still have put its intent into pages
	// SQLite had already; go on until SQLite, too, has no room.
	var sqliteFull bool
	var refused int
	for i := 0; i < 200 && !sqliteFull; i++ {
		for _, req := range []func() (int, string){
			func() (int, string) { return deploy(fmt.Sprintf("full%d", i)) },
			func() (int, string) { return api("POST", "/v1/tenants", fmt.Sprintf(`{"name":"full%d"}`, i)) },
		} {
			code, body := req()
			if refused == 0 || strings.Contains(body, "database or disk is full") && !sqliteFull {
				t.Logf("refused: %d %s", code, body)
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "the audit log cannot record it") {
				t.Fatalf("a mutating request on a full disk: %d %s", code, body)
			}
			refused++
			sqliteFull = sqliteFull || strings.Contains(body, "database or disk is full")
		}
	}
	if !sqliteFull {
		t.Errorf("after %d refused requests, SQLite still had room: only the head record failed", refused)
	}
	t.Logf("%d requests refused before SQLite itself was full", refused)
	// Reads answer; nothing was done.
	apps, err := m.Client.Apps(context.Background())
	if err != nil || len(apps) != 0 {
		t.Errorf("apps on a full disk: %+v %v", apps, err)
	}
	if ts, err := m.Client.Tenants(context.Background()); err != nil || len(ts) != 2 {
		t.Errorf("tenants on a full disk: %+v %v", ts, err)
	}
	if out, errOut, code := moat("audit", "--limit", "1"); code != 0 {
		t.Errorf("moat audit on a full disk: exit %d %s%s", code, out, errOut)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, body := deploy("after"); code != http.StatusCreated {
		t.Fatalf("deploy once the disk has room: %d %s", code, body)
	}
	if out, errOut, code := moat("audit", "verify"); code != 0 {
		t.Fatalf("verify after the disk was full: exit %d\n%s%s", code, out, errOut)
	}
	after := auditJSON(t, moat)
	for i, e := range before {
		if i >= len(after) || after[i].Hash != e.Hash {
			t.Fatalf("entry %d of before the disk was full is gone or changed: %+v", e.Seq, after)
		}
	}
	if apps, err := m.Client.Apps(context.Background()); err != nil || len(apps) != 1 || apps[0].Name != "after" {
		t.Errorf("apps once the disk has room: %+v %v", apps, err)
	}
	// Between the last entry from before and the deploy that followed,
	// only intents of refused requests.
	var kept int
	for _, e := range after[len(before):] {
		if e.Action == "deploy" && e.Target == "after" {
			break
		}
		if e.Result != "started" || e.User != "root" {
			t.Errorf("an entry of the full disk's time is not an intent: %+v", e)
		}
		kept++
	}
	t.Logf("%d of %d refused requests' intents were kept in SQLite's pages, with no outcome", kept, refused)
}

// onTmpfs moves the (stopped) master's state directory onto a tmpfs of
// the given size, mounted over it, and starts the master again. The
// mount is gone when the test ends, however it ends.
func onTmpfs(t *testing.T, m *testcluster.Master, size string) {
	t.Helper()
	m.Kill9()
	saved := t.TempDir()
	if out, err := exec.Command("cp", "-a", m.Dir+"/.", saved).CombinedOutput(); err != nil {
		t.Fatalf("save the master's state: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "moat-audit-test", m.Dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		m.Kill9()
		if out, err := exec.Command("umount", m.Dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", m.Dir, err, out)
			exec.Command("umount", "-l", m.Dir).Run()
		}
	})
	if out, err := exec.Command("cp", "-a", saved+"/.", m.Dir).CombinedOutput(); err != nil {
		t.Fatalf("restore the master's state: %v %s", err, out)
	}
	m.Start()
}

// fillUp writes path until the filesystem has not one byte left: big
// writes, then smaller, down to one byte.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for size := 1 << 20; size >= 1; size /= 16 {
		buf := make([]byte, size)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill the disk: %v", err)
			}
		}
	}
}

// rawAPI makes requests to the master's socket, giving back the status
// and the body as they are.
func rawAPI(socket string) func(method, path, body string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	return func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://master"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}
