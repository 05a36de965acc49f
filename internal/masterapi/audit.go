package masterapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// AuditEntry is one entry of the master's hash-chained audit log. A
// request makes two: its intent (Result "started"), written before it is
// carried out, and its outcome ("ok", "refused: …", "failed: …") whose
// Intent is the intent's Seq. What the master does by itself (failover,
// deployed, deploy failed) is one entry by user "master".
type AuditEntry struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	User       string    `json:"user"`
	Credential string    `json:"credential"`
	Action     string    `json:"action"`
	Target     string    `json:"target,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	Result     string    `json:"result"`
	Intent     int64     `json:"intent,omitempty"`
	Prev       string    `json:"prev"`
	Hash       string    `json:"hash"`
}

// AuditQuery selects entries of the audit log; zero fields select all.
type AuditQuery struct {
	Since string // a duration back from now ("1h", "2d") or an RFC 3339 time
	User  string
	App   string
	Limit int // the newest Limit entries
}

// AuditHead names the newest entry: an operator records it elsewhere and
// checks the log against it later (moat audit verify --head).
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

func (h AuditHead) String() string { return fmt.Sprintf("%d %s", h.Seq, h.Hash) }

// ParseAuditHead reads "SEQ HASH" or "SEQ:HASH", as moat audit verify
// prints the head.
func ParseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(s, " ")
	if !ok {
		seq, hash, ok = strings.Cut(s, ":")
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return AuditHead{}, errs.Invalid("head", "%q: want SEQ HASH, the sequence number and hex SHA-256 moat audit verify prints", s)
	}
	return AuditHead{Seq: n, Hash: hash}, nil
}

// AuditVerification is what checking the chain found.
type AuditVerification struct {
	OK      bool      `json:"ok"`
	Entries int64     `json:"entries"`
	Head    AuditHead `json:"head"`
	// Problem names the first entry changed or removed.
	Problem string `json:"problem,omitempty"`
	At      int64  `json:"at,omitempty"`
}

// ParseSince reads a --since or ?since= value: a duration back from now
// (Go's "90m", "1h30m", or whole days "2d") or a time (RFC 3339, or a
// date "2006-01-02", UTC).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 100000 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errs.Invalid("since", "%q: want a duration back from now (30m, 1h, 2d) or a time (2026-12-07T10:00:00Z, 2026-12-07)", s)
}

// AuditLog reads the audit log, oldest first.
func (c *Client) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	v := url.Values{}
	for k, s := range map[string]string{"since": q.Since, "user": q.User, "app": q.App} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []AuditEntry
	return out, c.Call(ctx, http.MethodGet, "/v1/audit?"+v.Encode(), nil, &out)
}

// VerifyAudit checks the audit log's chain, and against recorded (a head
// an operator wrote down, "SEQ HASH") unless it is "".
func (c *Client) VerifyAudit(ctx context.Context, recorded string) (AuditVerification, error) {
	path := "/v1/audit/verify"
	if recorded != "" {
		path += "?head=" + url.QueryEscape(recorded)
	}
	var out AuditVerification
	return out, c.Call(ctx, http.MethodGet, path, nil, &out)
}
