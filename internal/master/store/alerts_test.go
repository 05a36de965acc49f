package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// TestAlertsOutbox: a fired and a resolved alert each queue one notice
// per webhook, in order; a key fires once at a time; a reopened database
// keeps all of it; removing a webhook drops its queue.
func TestAlertsOutbox(t *testing.T) {
	ctx := context.Background()
	d, path := openTest(t)
	for _, name := range []string{"a", "b"} {
		if _, err := d.AddWebhook(ctx, name, "http://127.0.0.1:1/"+name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.AddWebhook(ctx, "a", "http://x/"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("a second webhook a: %v", err)
	}
	if _, err := d.AddWebhook(ctx, "c", "ftp://x/"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("an ftp webhook: %v", err)
	}
	body := func(s string) func(int64) ([]byte, []byte) {
		return func(id int64) ([]byte, []byte) { return []byte(s), []byte(fmt.Sprintf("%d-%s", id, s)) }
	}
	id1, err := d.FireAlert(ctx, "node-down/n1", body("firing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.FireAlert(ctx, "node-down/n1", body("firing")); err == nil {
		t.Error("a key fired twice at once")
	}
	id2, err := d.FireAlert(ctx, "crash-loop/web-a", body("firing"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ResolveAlert(ctx, id1, []byte("resolved"), []byte(fmt.Sprintf("%d-resolved", id1))); err != nil {
		t.Fatal(err)
	}
	if err := d.ResolveAlert(ctx, id1, []byte("resolved"), []byte("again")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Alerts(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(rows) != 2 || rows[0].Resolved.IsZero() || !rows[1].Resolved.IsZero() || string(rows[0].Data) != "resolved" {
		t.Fatalf("alerts after reopening: %+v, %v", rows, err)
	}
	want := []string{fmt.Sprintf("%d-firing", id1), fmt.Sprintf("%d-firing", id2), fmt.Sprintf("%d-resolved", id1)}
	for _, w := range []string{"a", "b"} {
		for i, wantBody := range want {
			seq, b, ok, err := d.NextNotice(ctx, w)
			if err != nil || !ok || string(b) != wantBody {
				t.Fatalf("webhook %s notice %d: %q %v %v, want %q", w, i, b, ok, err, wantBody)
			}
			if w == "b" && i == 1 {
				break // leave b one queued
			}
			d.DeleteNotice(ctx, seq)
		}
	}
	if _, _, ok, _ := d.NextNotice(ctx, "a"); ok {
		t.Error("a: more notices than made")
	}
	hooks, queued, err := d.Webhooks(ctx)
	if err != nil || len(hooks) != 2 || queued["a"] != 0 || queued["b"] != 2 {
		t.Errorf("webhooks: %+v %v %v", hooks, queued, err)
	}
	if err := d.RemoveWebhook(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := d.NextNotice(ctx, "b"); ok {
		t.Error("a removed webhook's notices stayed queued")
	}
	if err := d.RemoveWebhook(ctx, "b"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("removing b again: %v", err)
	}
}
