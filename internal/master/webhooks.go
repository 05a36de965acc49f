package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/moatcloud/moat/internal/alert"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/masterapi"
)

// Webhooks: one goroutine per webhook sends its queue (the outbox in the
// database) oldest first, one notice at a time, so each webhook receives
// the notices in the order they were made. A notice leaves the queue once
// the webhook answered it 2xx; otherwise it is tried again after
// alert.Backoff (0.5 s doubling to 30 s, with jitter), and the ones after
// it wait. A master restarted carries on from the queue.

// webhookTimeout bounds one delivery.
const webhookTimeout = 10 * time.Second

// webhookRun is one webhook's sender.
type webhookRun struct {
	name, url string
	wake      chan struct{}
	stop      context.CancelFunc
	mu        sync.Mutex
	lastErr   string
}

// webhookClient follows no redirect: a notice goes to the URL a cluster
// admin gave, never on to wherever that server points (the master's own
// loopback, its network); a 3xx is a failed delivery.
var webhookClient = &http.Client{Timeout: webhookTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func (m *Master) startWebhook(ctx context.Context, w store.Webhook) {
	ctx, cancel := context.WithCancel(ctx)
	h := &webhookRun{name: w.Name, url: w.URL, wake: make(chan struct{}, 1), stop: cancel}
	a := &m.alerts
	a.mu.Lock()
	if old := a.hooks[w.Name]; old != nil {
		old.stop()
	}
	a.hooks[w.Name] = h
	a.mu.Unlock()
	go m.sendWebhook(ctx, h)
}

// wakeWebhooks tells every sender that notices were queued.
func (m *Master) wakeWebhooks() {
	a := &m.alerts
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.hooks {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// sendWebhook delivers a webhook's queue until ctx ends.
func (m *Master) sendWebhook(ctx context.Context, h *webhookRun) {
	log := m.log.With("webhook", h.name)
	attempt := 0
	for ctx.Err() == nil {
		seq, body, ok, err := m.db.NextNotice(ctx, h.name)
		var wait time.Duration
		switch {
		case err != nil:
			log.Error("webhook queue", "err", err)
			wait = time.Second
		case !ok:
			select {
			case <-ctx.Done():
			case <-h.wake:
			}
			continue
		default:
			t0 := time.Now()
			err = post(ctx, h.url, body)
			h.mu.Lock()
			h.lastErr = ""
			if err != nil {
				h.lastErr = err.Error()
			}
			h.mu.Unlock()
			if err == nil {
				log.Debug("alert notice delivered", "seq", seq, "took", time.Since(t0).Round(time.Millisecond))
				if err := m.db.DeleteNotice(ctx, seq); err != nil {
					log.Error("delivered notice not dequeued", "seq", seq, "err", err)
				}
				attempt = 0
				continue
			}
			attempt++
			wait = alert.Backoff(attempt, rand.Float64())
			if ctx.Err() == nil {
				log.Warn("alert notice not delivered", "seq", seq, "attempt", attempt, "retry in", wait.Round(time.Millisecond), "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// post sends one notice; only a 2xx answer counts.
func post(ctx context.Context, target string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "moat-alerts")
	resp, err := webhookClient.Do(req)
	if err != nil {
		// A webhook's URL often holds its secret (a chat's hook token in
		// its path or query): the error, logged and shown by moat alerts
		// webhook ls, names only its scheme and host.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		// The status line is the webhook server's text, shown by moat
		// alerts webhook ls on a terminal: quoted if it holds anything
		// a terminal would act on.
		status := resp.Status
		if strings.IndexFunc(status, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			status = strconv.Quote(status)
		}
		return fmt.Errorf("webhook answered %s", status)
	}
	return nil
}

// redactURL is a URL's scheme and host, the rest left out. Pure.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(a webhook URL)"
	}
	if u.Path == "" && u.RawQuery == "" && u.User == nil {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Webhooks lists the alert webhooks, with their queues.
func (m *Master) Webhooks(ctx context.Context) ([]masterapi.Webhook, error) {
	hooks, queued, err := m.db.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := []masterapi.Webhook{}
	a := &m.alerts
	for _, w := range hooks {
		x := masterapi.Webhook{Name: w.Name, URL: w.URL, Created: w.Created, Queued: queued[w.Name]}
		a.mu.Lock()
		if h := a.hooks[w.Name]; h != nil {
			h.mu.Lock()
			x.LastError = h.lastErr
			h.mu.Unlock()
		}
		a.mu.Unlock()
		out = append(out, x)
	}
	return out, nil
}

// AddWebhook adds a webhook; it receives the notices made from then on.
// Its name is the URL's host when none is given.
func (m *Master) AddWebhook(ctx context.Context, req masterapi.NewWebhook, actor string) (masterapi.Webhook, error) {
	if req.Name == "" {
		if u, err := url.Parse(req.URL); err == nil {
			req.Name = u.Host
		}
	}
	if !webhookName.MatchString(req.Name) {
		return masterapi.Webhook{}, errs.Invalid("name", "%q: want 1 to 64 letters, digits and . _ : -, starting with a letter or digit", req.Name)
	}
	w, err := m.db.AddWebhook(ctx, req.Name, req.URL)
	if err != nil {
		return masterapi.Webhook{}, err
	}
	m.startWebhook(m.ctx, w)
	m.log.Info("alert webhook added", "webhook", w.Name, "by", actor)
	return masterapi.Webhook{Name: w.Name, URL: w.URL, Created: w.Created}, nil
}

// RemoveWebhook removes a webhook and what was queued for it.
func (m *Master) RemoveWebhook(ctx context.Context, name, actor string) error {
	if err := m.db.RemoveWebhook(ctx, name); err != nil {
		return err
	}
	a := &m.alerts
	a.mu.Lock()
	if h := a.hooks[name]; h != nil {
		h.stop()
		delete(a.hooks, name)
	}
	a.mu.Unlock()
	m.log.Info("alert webhook removed", "webhook", name, "by", actor)
	return nil
}
