package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/masterapi"
)

func TestAuditRows(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 1, 2, 0, time.UTC)
	entries := []masterapi.AuditEntry{
		{Seq: 7, Time: at, User: "alice", Credential: "SHA256:abc", Action: "deploy", Target: "web", Detail: "file web.yaml", Result: "started"},
		{Seq: 8, Time: at, User: "alice", Credential: "SHA256:abc", Action: "deploy", Target: "web", Detail: "revision 3", Result: "ok", Intent: 7},
		// A refused request's fields are the requester's: nothing in them
		// reaches the terminal as is.
		{Seq: 9, Time: at, User: "bob", Credential: "cert 1", Action: "deploy", Target: "x\x1b[2J\ny", Result: "refused: no\tway"},
	}
	want := [][]string{
		{"SEQ", "TIME", "USER", "CREDENTIAL", "ACTION", "TARGET", "RESULT", "DETAIL"},
		{"7", "2026-12-07 10:01:02", "alice", "SHA256:abc", "deploy", "web", "started", "file web.yaml"},
		{"8", "2026-12-07 10:01:02", "alice", "SHA256:abc", "deploy", "web", "ok (of 7)", "revision 3"},
		{"9", "2026-12-07 10:01:02", "bob", "cert 1", "deploy", `x\x1b[2J\ny`, `refused: no\tway`, "-"},
	}
	if d := cmp.Diff(want, auditRows(entries)); d != "" {
		t.Errorf("auditRows (-want +got):\n%s", d)
	}
}

func TestReportVerification(t *testing.T) {
	head := masterapi.AuditHead{Seq: 42, Hash: strings.Repeat("ab", 32)}
	tests := []struct {
		name     string
		v        masterapi.AuditVerification
		recorded bool
		out, err string
	}{
		{"intact", masterapi.AuditVerification{OK: true, Entries: 42, Head: head}, false,
			"the audit log is intact: 42 entries, chained and matching the head record\nhead: 42 " + head.Hash +
				"\nkeep the head elsewhere and check against it later: moat audit verify --head \"42 " + head.Hash + "\"\n", ""},
		{"intact against a recorded head", masterapi.AuditVerification{OK: true, Entries: 42, Head: head}, true,
			"the audit log is intact: 42 entries, chained and matching the head record and the recorded head\nhead: 42 " + head.Hash + "\n", ""},
		{"changed", masterapi.AuditVerification{Entries: 3, Problem: "entry 4 (…) was changed", At: 4}, false,
			"", "the audit log is not intact: entry 4 (…) was changed (the 3 entries before it are intact)"},
		{"rewritten", masterapi.AuditVerification{Entries: 5, Problem: "entry 6 (…) is not the one the head record names"}, false,
			"", "the audit log is not intact: entry 6 (…) is not the one the head record names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{stdout: &output{}}
			err := a.reportVerification(tt.v, tt.recorded)
			if got := a.stdout.buf.String(); got != tt.out {
				t.Errorf("out %q\nwant %q", got, tt.out)
			}
			if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
				t.Errorf("err %v, want %q", err, tt.err)
			}
		})
	}
}
