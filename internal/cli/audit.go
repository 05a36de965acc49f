package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/masterapi"
)

func (a *app) auditCommand() *cobra.Command {
	var q masterapi.AuditQuery
	cmd := &cobra.Command{
		Use:   "audit [--since DURATION|TIME] [--user U] [--app A] [--limit N]",
		Short: "Show the audit log: who did what, when, and what came of it",
		Long: `Show the master's audit log, oldest first. Every mutating request is there
twice: its intent ("started"), written before the master acts on it, and
its outcome ("ok", "refused: …", "failed: …"). An intent without an
outcome is a request the master was carrying out when it stopped. What
the master does by itself (failover, deployed, deploy failed) is by user
"master". Each entry carries the hash of the one before: moat audit
verify checks the chain.`,
		Example: "  moat audit --since 1h\n  moat audit --user alice --app web\n  moat audit --since 2026-12-07 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := masterapi.ParseSince(q.Since, time.Now()); err != nil {
				return usageError{err}
			}
			if q.Limit < 0 {
				return usageError{fmt.Errorf("--limit %d: want a number of entries", q.Limit)}
			}
			entries, err := a.masterClient().AuditLog(cmd.Context(), q)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, entries)
			}
			return table(a.stdout, auditRows(entries))
		},
	}
	cmd.Flags().StringVar(&q.Since, "since", "", "entries from this long ago (30m, 1h, 2d) or this time (2026-12-07T10:00:00Z, 2026-12-07)")
	cmd.Flags().StringVar(&q.User, "user", "", "only this user's entries (root, master, a user's name)")
	cmd.Flags().StringVar(&q.App, "app", "", "only entries about this app")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "only the newest N entries")
	cmd.AddCommand(a.auditVerifyCommand())
	return cmd
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var head string
	cmd := &cobra.Command{
		Use:   `verify [--head "SEQ HASH"]`,
		Short: "Check the audit log's chain: name the first entry changed or removed",
		Long: `Check every entry of the audit log against its hash and the hash the next
entry carries, and the newest against the head record the master keeps
beside its database. Exits 0 and prints the number of entries and the head
when the log is intact; exits 1 naming the first entry that was changed or
removed otherwise.

Someone who can write the master's state directory can rewrite the chain
and the head record together. Record the head this command prints
somewhere else (a ticket, another machine) and pass it back with --head:
a log rewritten or cut short since then no longer matches it.`,
		Example: "  moat audit verify\n  moat audit verify --head \"1042 5f0c…\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if head != "" {
				if _, err := masterapi.ParseAuditHead(head); err != nil {
					return usageError{err}
				}
			}
			v, err := a.masterClient().VerifyAudit(cmd.Context(), head)
			if err != nil {
				return err
			}
			return a.reportVerification(v, head != "")
		},
	}
	cmd.Flags().StringVar(&head, "head", "", `a head recorded earlier ("SEQ HASH", as this command prints it)`)
	return cmd
}

// reportVerification prints what verify found; a log that is not intact
// is exit status 1, with the problem on stderr (and in the JSON).
func (a *app) reportVerification(v masterapi.AuditVerification, recorded bool) error {
	if a.json {
		if err := printJSON(a.stdout, v); err != nil || v.OK {
			return err
		}
		return exitError{1}
	}
	if !v.OK && v.At > 0 {
		return fmt.Errorf("the audit log is not intact: %s (the %d entries before it are intact)", printable(v.Problem), v.At-1)
	}
	if !v.OK {
		// Rewritten with its hashes recomputed: any entry up to there may
		// be the one changed.
		return fmt.Errorf("the audit log is not intact: %s", printable(v.Problem))
	}
	against := "the head record"
	if recorded {
		against += " and the recorded head"
	}
	fmt.Fprintf(a.stdout, "the audit log is intact: %d entries, chained and matching %s\nhead: %s\n", v.Entries, against, v.Head)
	if v.Entries > 0 && !recorded {
		fmt.Fprintf(a.stdout, "keep the head elsewhere and check against it later: moat audit verify --head %q\n", v.Head.String())
	}
	return nil
}

// auditRows is the audit log as a table, oldest first.
func auditRows(entries []masterapi.AuditEntry) [][]string {
	rows := [][]string{{"SEQ", "TIME", "USER", "CREDENTIAL", "ACTION", "TARGET", "RESULT", "DETAIL"}}
	for _, e := range entries {
		result := e.Result
		if e.Intent > 0 {
			result += " (of " + strconv.FormatInt(e.Intent, 10) + ")"
		}
		rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.DateTime), printable(e.User),
			printable(e.Credential), printable(e.Action), orDash(printable(e.Target)), printable(result), orDash(printable(e.Detail))})
	}
	return rows
}

// printable escapes what a terminal would act on or a table would break
// on (control characters, tabs, newlines): an entry's fields come from
// requests, some of them refused ones.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
