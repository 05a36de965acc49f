package master_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/moatcloud/moat/internal/master"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestAuditVerifyNamesTampering: mutating requests through the moat
// command (allowed, failed, refused) are in moat audit with who, what,
// on what and what came of it. Then, with the master stopped, the log is
// tampered with in its database as someone holding the file would, and
// moat audit verify, on the master started again, names where: an edited
// field, an entry removed in the middle, the newest removed, the chain
// rewritten with its hashes recomputed (caught by the head record), and —
// what the head record cannot catch, the head record rewritten too —
// caught by a head the operator recorded elsewhere.
func TestAuditVerifyNamesTampering(t *testing.T) {
	m := bareMaster(t)
	moat := moatCLI(t, m)
	if _, errOut, code := moat("tenant", "add", "acme"); code != 0 {
		t.Fatalf("tenant add: exit %d %s", code, errOut)
	}
	if _, errOut, code := moat("node", "cordon", "nosuch"); code != 3 {
		t.Fatalf("cordon of a missing node: exit %d %s, want 3", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(bad, []byte("name: web\nimage: probe:1\nreplicas: 1\nbogus: 1\n"), 0o600)
	if _, errOut, code := moat("deploy", "-f", bad, "--detach"); code != 2 {
		t.Fatalf("deploy of a bad spec: exit %d %s, want 2", code, errOut)
	}

	log := auditJSON(t, moat)
	type seen struct{ user, credential, action, target, result string }
	var got []seen
	for _, e := range log {
		result, _, _ := strings.Cut(e.Result, ":")
		got = append(got, seen{e.User, e.Credential, e.Action, e.Target, result})
	}
	root := func(action, target, result string) seen { return seen{"root", "local socket", action, target, result} }
	want := []seen{root("tenants add", "acme", "started"), root("tenants add", "acme", "ok"),
		root("node cordon", "nosuch", "started"), root("node cordon", "nosuch", "failed"),
		root("deploy", "web", "started"), root("deploy", "web", "failed")}
	if !slices.Equal(got, want) {
		t.Fatalf("moat audit --json:\n got %+v\nwant %+v", got, want)
	}
	if !strings.Contains(log[5].Result, "bogus") || log[5].Intent != log[4].Seq || log[3].Intent != log[2].Seq {
		t.Errorf("the deploy's outcome does not say why, or does not point at its intent: %+v", log[4:])
	}
	checkAuditFilters(t, moat)

	out, errOut, code := moat("audit", "verify")
	if code != 0 || !strings.Contains(out, "intact: 6 entries") || !strings.Contains(out, "head: 6 "+log[5].Hash) {
		t.Fatalf("verify of an intact log: exit %d\n%s%s", code, out, errOut)
	}
	recorded := "6 " + log[5].Hash // what an operator copies elsewhere

	m.Kill9()
	pristine := snapshotState(t, m.Dir)
	cordonOutcome := log[3]
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
		// head rewrites the head record, to the chain's new newest entry.
		head bool
		// problem is what verify says, "" for intact; withHead what it
		// says given the recorded head.
		problem, withHead string
		at                int64
	}{
		{name: "an outcome edited", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `UPDATE audit_log SET result = 'ok' WHERE seq = 4`)
		}, problem: "entry 4 (" + cordonOutcome.Time.UTC().Format("2006-01-02 15:04:05") + " root node cordon nosuch) was changed", at: 4},
		{name: "an outcome edited, its hash and the rest of the chain recomputed", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `UPDATE audit_log SET result = 'ok' WHERE seq = 4`)
			rehashFrom(t, db, 4)
		}, problem: "is not the one the head record names", withHead: "is not the one the head record names"},
		// What the head record cannot catch: it is rewritten too. A head
		// recorded elsewhere does.
		{name: "the chain and the head record rewritten", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `UPDATE audit_log SET result = 'ok' WHERE seq = 4`)
			rehashFrom(t, db, 4)
		}, head: true, withHead: "entry 6 (" + log[5].Time.UTC().Format("2006-01-02 15:04:05") + " root deploy web) is not the one the recorded head names"},
		{name: "an entry removed in the middle", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `DELETE FROM audit_log WHERE seq = 3`)
		}, problem: "entry 3 was removed: 4 follows 2", at: 3},
		{name: "the newest entries removed", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `DELETE FROM audit_log WHERE seq >= 5`)
		}, problem: "the newest 2 entries were removed: the head record is 6, the log ends at 4", at: 5},
		{name: "the newest entries removed and the head record rewritten", tamper: func(t *testing.T, db *sql.DB) {
			exec1(t, db, `DELETE FROM audit_log WHERE seq >= 5`)
		}, head: true, withHead: "the newest 2 entries were removed: the recorded head is 6, the log ends at 4", at: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restoreState(t, m.Dir, pristine)
			db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, master.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, db)
			if tt.head {
				var h store.AuditHead
				db.QueryRow(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
				os.WriteFile(filepath.Join(m.Dir, store.AuditHeadFile), []byte(h.String()+"\n"), 0o600)
			}
			db.Close()
			m.Start()
			defer m.Kill9()
			expectVerify(t, moat, nil, tt.problem, tt.at)
			if tt.withHead != "" {
				expectVerify(t, moat, []string{"--head", recorded}, tt.withHead, tt.at)
			}
		})
	}
}

// expectVerify runs moat audit verify (with args) and checks it names
// problem ("" for an intact log) and, with --json, the entry at.
func expectVerify(t *testing.T, moat cliFunc, args []string, problem string, at int64) {
	t.Helper()
	out, errOut, code := moat(append([]string{"audit", "verify"}, args...)...)
	switch {
	case problem == "" && (code != 0 || !strings.Contains(out, "the audit log is intact")):
		t.Errorf("verify %v: exit %d, want 0 (the head record cannot catch this)\n%s%s", args, code, out, errOut)
	case problem != "" && (code != 1 || !strings.Contains(errOut, "the audit log is not intact: ") || !strings.Contains(errOut, problem)):
		t.Errorf("verify %v: exit %d, want 1 naming %q\n%s%s", args, code, problem, out, errOut)
	}
	if problem == "" {
		return
	}
	out, _, code = moat(append([]string{"audit", "verify", "--json"}, args...)...)
	var v masterapi.AuditVerification
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.OK || v.At != at || !strings.Contains(v.Problem, problem) {
		t.Errorf("verify --json %v: exit %d %+v (%v), want at %d", args, code, v, err, at)
	}
}

// checkAuditFilters: --app, --user, --limit and --since select entries;
// a bad --since is a usage error; the table has its columns.
func checkAuditFilters(t *testing.T, moat cliFunc) {
	t.Helper()
	count := func(args ...string) int { return len(auditJSON(t, moat, args...)) }
	for _, c := range []struct {
		args []string
		want int
	}{{[]string{"--app", "web"}, 2}, {[]string{"--app", "nosuch"}, 0}, {[]string{"--user", "root"}, 6},
		{[]string{"--user", "alice"}, 0}, {[]string{"--limit", "4"}, 4}, {[]string{"--since", "1h"}, 6},
		{[]string{"--since", "2999-01-01"}, 0}} {
		if n := count(c.args...); n != c.want {
			t.Errorf("moat audit %v: %d entries, want %d", c.args, n, c.want)
		}
	}
	if _, errOut, code := moat("audit", "--since", "yesterday"); code != 2 || !strings.Contains(errOut, `since: "yesterday"`) {
		t.Errorf("a bad --since: exit %d %s", code, errOut)
	}
	out, _, code := moat("audit", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ ") || !strings.Contains(lines[0], "CREDENTIAL") ||
		!strings.Contains(lines[2], "local socket") || !strings.Contains(lines[2], "failed: ") || !strings.Contains(lines[2], "(of 5)") {
		t.Errorf("moat audit --limit 2: exit %d\n%s", code, out)
	}
}

func auditJSON(t *testing.T, moat cliFunc, args ...string) []masterapi.AuditEntry {
	t.Helper()
	out, errOut, code := moat(append([]string{"audit", "--json"}, args...)...)
	var log []masterapi.AuditEntry
	if err := json.Unmarshal([]byte(out), &log); code != 0 || err != nil {
		t.Fatalf("moat audit --json %v: exit %d %v\n%s%s", args, code, err, out, errOut)
	}
	return log
}

// rehashFrom recomputes the hashes from entry seq on, as someone covering
// an edit would, from the hash's definition (store/audit_chain.go).
func rehashFrom(t *testing.T, db *sql.DB, seq int64) {
	t.Helper()
	var prev string
	db.QueryRow(`SELECT hash FROM audit_log WHERE seq = ?`, seq-1).Scan(&prev)
	rows, err := db.Query(`SELECT seq, time, user, credential, action, target, detail, result, intent FROM audit_log WHERE seq >= ? ORDER BY seq`, seq)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		seq, intent int64
		fields      [7]string
	}
	var es []entry
	for rows.Next() {
		var e entry
		f := &e.fields
		if err := rows.Scan(&e.seq, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &e.intent); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	rows.Close()
	for _, e := range es {
		h := sha256.New()
		fields := append([]string{"moat audit v1", strconv.FormatInt(e.seq, 10)}, e.fields[:]...)
		for _, f := range append(fields, strconv.FormatInt(e.intent, 10), prev) {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(f)))
			h.Write(n[:])
			h.Write([]byte(f))
		}
		hash := hex.EncodeToString(h.Sum(nil))
		exec1(t, db, `UPDATE audit_log SET prev = ?, hash = ? WHERE seq = ?`, prev, hash, e.seq)
		prev = hash
	}
}

func exec1(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s: no row", query)
	}
}

// bareMaster is a master with no node.
func bareMaster(t *testing.T) *testcluster.Master {
	t.Helper()
	testcluster.RequireRoot(t)
	keys := t.TempDir()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(keys, "master_ed25519")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return testcluster.StartMaster(t, filepath.Join(keys, "master_ed25519"))
}

type cliFunc func(args ...string) (stdout, stderr string, code int)

// moatCLI runs the moat command against m's socket.
func moatCLI(t *testing.T, m *testcluster.Master) cliFunc {
	return func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(testcluster.Moat(t), args...)
		cmd.Env = append(os.Environ(), "MOAT_MASTER=local", "MOAT_MASTER_SOCKET="+m.Socket)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errOut.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("moat %v: %v", args, err)
		}
		return out.String(), errOut.String(), 0
	}
}

// snapshotState reads the database, whole (its write-ahead log folded in:
// the master was killed), and the head record.
func snapshotState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, master.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	files := map[string][]byte{}
	for _, name := range []string{master.DBFile, store.AuditHeadFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

func restoreState(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(filepath.Join(dir, master.DBFile+suffix))
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
