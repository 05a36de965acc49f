package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestCache(t *testing.T, key byte) *Cache {
	t.Helper()
	c, err := NewCache(filepath.Join(t.TempDir(), "acme"), bytes.Repeat([]byte{key}, 32), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// carry is a master in miniature: it pulls a's outbox and installs each
// change in the others before acknowledging it, as internal/master does.
func carry(ctx context.Context, t *testing.T, a *Outbox, others ...*Cache) {
	var acked uint64
	for ctx.Err() == nil {
		for _, e := range a.Next(ctx, acked, time.Second) {
			for _, o := range others {
				install := o.Install
				if e.Claim {
					install = o.InstallClaim
				}
				if _, err := install(e.Hash, e.Data); err != nil {
					t.Errorf("install %s: %v", e.Hash, err)
				}
			}
			acked = max(acked, e.Seq)
		}
	}
}

// TestReplicaCacheChallenge: a challenge's Put on one edge returns only
// once the other edge has it, and a certificate and a deletion follow.
func TestReplicaCacheChallenge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := newTestCache(t, 7), newTestCache(t, 7)
	if a.KeyID() != b.KeyID() || a.KeyID() == newTestCache(t, 8).KeyID() {
		t.Fatalf("key IDs %s %s: the same key must give the same ID, another key another", a.KeyID(), b.KeyID())
	}
	out := NewOutbox(a, quietLog())
	done := make(chan struct{})
	go func() { defer close(done); carry(ctx, t, out, b) }()
	defer func() { cancel(); <-done }()
	// The carrier must be pulling before a challenge's Put waits for it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		out.mu.Lock()
		p := out.polling
		out.mu.Unlock()
		if p > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the carrier never pulled")
		}
		time.Sleep(time.Millisecond) // polling a goroutine's start, with a deadline
	}

	t0 := time.Now()
	if err := a.Put(ctx, "tok123+http-01", []byte("key authorization")); err != nil {
		t.Fatal(err)
	}
	// No waiting here: Put returned, so b must have it already.
	got, err := b.Get(ctx, "tok123+http-01")
	if err != nil || string(got) != "key authorization" {
		t.Fatalf("the challenge on the other edge right after Put: %q, %v", got, err)
	}
	t.Logf("challenge on the other edge %v after Put began", time.Since(t0))

	if err := a.Put(ctx, "web.test", []byte("cert and key")); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "tok123+http-01"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		got, err := b.Get(ctx, "web.test")
		_, gone := b.Get(ctx, "tok123+http-01")
		if err == nil && string(got) == "cert and key" && errors.Is(gone, autocert.ErrCacheMiss) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate and the deletion on the other edge: %q %v, token: %v", got, err, gone)
		}
		time.Sleep(10 * time.Millisecond) // polling an asynchronous copy, with a deadline
	}
}

// TestReplicaCacheForged: what the master hands over is kept only if it
// opens with the edge's key bound to its hash: altered bytes, an entry
// moved to another name, one sealed with another key, or one of the old
// format are refused, and the cache is unchanged.
func TestReplicaCacheForged(t *testing.T) {
	ctx := context.Background()
	a, b := newTestCache(t, 7), newTestCache(t, 7)
	stranger := newTestCache(t, 9)
	if err := a.Put(ctx, "web.test", []byte("genuine")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "web.test", []byte("b's own")); err != nil {
		t.Fatal(err)
	}
	blob, _ := os.ReadFile(a.path("web.test"))
	h := NameHash("web.test")

	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	if err := stranger.Put(ctx, "web.test", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	strangers, _ := os.ReadFile(stranger.path("web.test"))
	v1 := bytes.Clone(blob)
	v1[0] = cacheVersion1

	for what, try := range map[string]struct {
		hash string
		data []byte
	}{
		"altered":          {h, flipped},
		"another key":      {h, strangers},
		"format 1":         {h, v1},
		"empty":            {h, []byte{}},
		"not a hash":       {"../../etc/passwd", blob},
		"upper-case hash":  {"A" + h[1:], blob},
		"moved to a name":  {NameHash("evil.test"), blob},
		"moved to a token": {NameHash("x+http-01"), blob},
		"unsealed delete":  {h, nil},
		"forged delete":    {h, append([]byte{cacheDeleted}, flipped[1:]...)},
	} {
		if ok, err := b.Install(try.hash, try.data); err == nil || ok {
			t.Errorf("%s: installed (%v, %v)", what, ok, err)
		}
	}
	if got, err := b.Get(ctx, "web.test"); err != nil || string(got) != "b's own" {
		t.Errorf("after the forgeries: %q, %v; want b's own entry unchanged", got, err)
	}
	if _, err := b.Get(ctx, "evil.test"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("evil.test: %v, want a miss", err)
	}
	// The genuine one is kept.
	if ok, err := b.Install(h, blob); err != nil || !ok {
		t.Fatalf("genuine: %v, %v", ok, err)
	}
	if got, err := b.Get(ctx, "web.test"); err != nil || string(got) != "genuine" {
		t.Errorf("genuine: %q, %v", got, err)
	}
}

// TestReplicaCacheAlone: with nobody pulling, a challenge's Put does not
// wait; with a puller that never acknowledges, it waits no longer than
// its context; a change of its own not yet acknowledged is not
// overwritten by what the master hands over.
func TestReplicaCacheAlone(t *testing.T) {
	ctx := context.Background()
	a := newTestCache(t, 7)
	out := NewOutbox(a, quietLog())
	t0 := time.Now()
	if err := a.Put(ctx, "t+http-01", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("a challenge's Put with no master waited %v", d)
	}
	if got := out.Next(ctx, 0, 0); len(got) != 1 || got[0].Hash != NameHash("t+http-01") || !got[0].Challenge {
		t.Fatalf("outbox: %+v", got)
	}
	// A master pulled: the next challenge waits for its word, bounded.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if err := a.Put(short, "u+token", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("a challenge's Put, never acknowledged, with a 300ms context: %v", d)
	}

	b := newTestCache(t, 7)
	if err := b.Put(ctx, "u+token", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	blob, _ := os.ReadFile(b.path("u+token"))
	if ok, err := a.Install(NameHash("u+token"), blob); ok || err != nil {
		t.Errorf("a pending change overwritten: %v %v", ok, err)
	}
	// Acknowledged, the master's copy is taken again.
	got := out.Next(ctx, 0, 0)
	out.Next(ctx, got[len(got)-1].Seq, 0)
	if ok, err := a.Install(NameHash("u+token"), blob); !ok || err != nil {
		t.Errorf("after the ack: %v %v", ok, err)
	}
	if v, err := a.Get(ctx, "u+token"); err != nil || string(v) != "from b" {
		t.Errorf("u+token: %q %v", v, err)
	}
	// A deletion is installed only sealed by an edge, for that name.
	outB := NewOutbox(b, quietLog())
	if err := b.Delete(ctx, "u+token"); err != nil {
		t.Fatal(err)
	}
	gone := outB.Next(ctx, 0, 0)
	if len(gone) != 1 || !IsDeletion(gone[0].Data) {
		t.Fatalf("b's outbox after a deletion: %+v", gone)
	}
	for what, data := range map[string][]byte{"unsealed": nil, "empty": {}, "bare marker": {cacheDeleted}} {
		if ok, err := a.Install(NameHash("u+token"), data); ok || err == nil {
			t.Errorf("%s deletion installed", what)
		}
	}
	if ok, err := a.Install(NameHash("other+token"), gone[0].Data); ok || err == nil {
		t.Errorf("a deletion moved to another name installed")
	}
	if _, err := a.Get(ctx, "u+token"); err != nil {
		t.Fatalf("u+token gone after refused deletions: %v", err)
	}
	if ok, err := a.Install(NameHash("u+token"), gone[0].Data); !ok || err != nil {
		t.Errorf("delete: %v %v", ok, err)
	}
	if _, err := a.Get(ctx, "u+token"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("deleted: %v", err)
	}
}

// TestCacheFormat1: entries written before format 2 still open.
func TestCacheFormat1(t *testing.T) {
	c := newTestCache(t, 7)
	ns := c.aead.NonceSize()
	out := make([]byte, 1+ns)
	out[0] = cacheVersion1
	out = c.aead.Seal(out, out[1:1+ns], []byte("old"), additional("old.test"))
	if err := os.WriteFile(c.path("old.test"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(context.Background(), "old.test"); err != nil || string(got) != "old" {
		t.Errorf("format 1: %q, %v", got, err)
	}
}
