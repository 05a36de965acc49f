package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"time"
)

// AuditEntry is one entry of the hash-chained audit log.
type AuditEntry struct {
	Seq  int64
	Time time.Time // UTC
	// User and Credential say who: "root" and "local socket", a user and
	// their key's fingerprint or certificate id, or "master" for what the
	// master does by itself.
	User       string
	Credential string
	Action     string // "deploy", "scale", "node cordon", "failover", …
	Target     string // the app, node or image the action names
	Detail     string
	// Result is "started" for a request's intent (written before it is
	// carried out), then "ok", "refused: …" or "failed: …" in the entry
	// of its outcome, whose Intent is the intent's Seq.
	Result string
	Intent int64
	Prev   string // the hash of entry Seq-1 ("" for the first)
	Hash   string // hex SHA-256 of every field above and Prev (entryHash)
}

// AuditHead is the newest entry of the log: its sequence number and hash.
type AuditHead struct {
	Seq  int64
	Hash string
}

func (h AuditHead) String() string { return fmt.Sprintf("%d %s", h.Seq, h.Hash) }

// auditTimeFormat is fixed-width, so an entry's time reads back as the
// very text that was hashed.
const auditTimeFormat = "2006-01-02T15:04:05.000000000Z"

func auditTime(t time.Time) string { return t.UTC().Format(auditTimeFormat) }

// entryHash is SHA-256 over a tag and every field of e but Hash, each as
// an 8-byte big-endian length then its bytes: no two different entries
// encode alike, whatever their fields contain.
func entryHash(e AuditEntry) string {
	h := sha256.New()
	for _, f := range []string{"moat audit v1", strconv.FormatInt(e.Seq, 10), auditTime(e.Time), e.User, e.Credential,
		e.Action, e.Target, e.Detail, e.Result, strconv.FormatInt(e.Intent, 10), e.Prev} {
		writeField(h, f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// AuditVerdict is what checking the chain found.
type AuditVerdict struct {
	Entries int64     // entries read (up to the first problem)
	Head    AuditHead // the newest entry read
	// Problem names the first entry changed or removed; "" when intact.
	Problem string
	// At is the sequence number of the first entry changed or removed
	// (0 when no single entry can be named).
	At int64
}

// OK reports whether the chain is intact.
func (v AuditVerdict) OK() bool { return v.Problem == "" }

// AuditAnchor is a (seq, hash) held outside the log: the head record the
// master keeps beside the database, or one an operator wrote down.
type AuditAnchor struct {
	AuditHead
	Name string // "the head record", "the recorded head"
}

// chainCheck walks the log in order and stops at the first problem: an
// entry whose hash is not that of its fields (changed), an entry whose
// link does not name the one before (the one before was changed and its
// hash recomputed), a gap in the numbers (removed), and anchors the log
// no longer reaches or no longer matches (newest removed, or rewritten).
type chainCheck struct {
	anchors []AuditAnchor
	have    bool
	last    AuditEntry
	v       AuditVerdict
}

func newChainCheck(anchors ...AuditAnchor) *chainCheck { return &chainCheck{anchors: anchors} }

// add takes the next entry; false once a problem is found.
func (c *chainCheck) add(e AuditEntry) bool {
	if c.v.Problem != "" {
		return false
	}
	want := int64(1)
	if c.have {
		want = c.last.Seq + 1
	}
	switch {
	case e.Seq > want && c.have:
		c.fail(want, "%s removed: %d follows %d", removed(want, e.Seq-1), e.Seq, c.last.Seq)
	case e.Seq > want:
		c.fail(want, "%s removed: the log begins at %d", removed(want, e.Seq-1), e.Seq)
	case e.Seq < want:
		c.fail(e.Seq, "entry %d appears twice or out of order", e.Seq)
	case c.have && e.Prev != c.last.Hash:
		c.fail(c.last.Seq, "%s was changed", describeEntry(c.last))
	case entryHash(e) != e.Hash:
		c.fail(e.Seq, "%s was changed", describeEntry(e))
	}
	if c.v.Problem != "" {
		return false
	}
	for _, a := range c.anchors {
		if a.Seq == e.Seq && a.Hash != e.Hash {
			c.fail(0, "%s is not the one %s names (%s): the log was rewritten up to it", describeEntry(e), a.Name, a.AuditHead)
			return false
		}
	}
	c.have, c.last = true, e
	c.v.Entries++
	c.v.Head = AuditHead{Seq: e.Seq, Hash: e.Hash}
	return true
}

// finish checks the anchors the log did not reach and returns the verdict.
func (c *chainCheck) finish() AuditVerdict {
	if c.v.Problem != "" {
		return c.v
	}
	for _, a := range c.anchors {
		if a.Seq <= c.v.Head.Seq {
			continue
		}
		if n := a.Seq - c.v.Head.Seq; n == 1 {
			c.fail(a.Seq, "the newest entry was removed: %s is %d, the log ends at %d", a.Name, a.Seq, c.v.Head.Seq)
		} else {
			c.fail(c.v.Head.Seq+1, "the newest %d entries were removed: %s is %d, the log ends at %d", n, a.Name, a.Seq, c.v.Head.Seq)
		}
		break
	}
	return c.v
}

func (c *chainCheck) fail(at int64, format string, args ...any) {
	c.v.At, c.v.Problem = at, fmt.Sprintf(format, args...)
}

func removed(from, to int64) string {
	if from == to {
		return fmt.Sprintf("entry %d was", from)
	}
	return fmt.Sprintf("entries %d-%d were", from, to)
}

// describeEntry names an entry as an operator knows it:
// "entry 42 (2026-12-07 10:01:02 alice deploy web)".
func describeEntry(e AuditEntry) string {
	what := e.Action
	if e.Target != "" {
		what += " " + e.Target
	}
	return fmt.Sprintf("entry %d (%s %s %s)", e.Seq, e.Time.UTC().Format(time.DateTime), e.User, what)
}
