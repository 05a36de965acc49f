// Package hetzner is moat's Hetzner Cloud provider, through the official
// client (hcloud-go): servers created with user data and native labels,
// listed by label selector page by page, destroyed; snapshots for pool
// images; server types with their per-location prices. Its errors are
// mapped onto provider's classes, and it is the one layer of retries:
// hcloud-go's own retries are off, every call goes through Cloud.Policy.
package hetzner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/moatcloud/moat/internal/provider"
)

// maxPages bounds a listing, against an API whose next_page never ends.
const maxPages = 1000

// Cloud is one Hetzner Cloud project (one API token).
type Cloud struct {
	// Policy bounds the calls made for one request (a rate limit waits
	// one refill of Hetzner's bucket, server errors back off with jitter).
	Policy provider.Policy
	// CallTimeout bounds one HTTP request: one unanswered by then counts
	// as a temporary failure, and a create sent again then finds its name
	// taken and adopts the server the first made (names are unique in a
	// Hetzner project).
	CallTimeout time.Duration
	// ActionPoll is the first wait before a running action is looked at
	// again; the wait doubles up to 5×ActionPoll (a create takes Hetzner
	// 10-20 s: about 6 looks, not 20, of the 3,600 an hour). ActionTimeout
	// is how long one (a create, a snapshot) may run.
	ActionPoll    time.Duration
	ActionTimeout time.Duration

	client *hcloud.Client
	calls  atomic.Int64
}

var (
	_ provider.Provider = (*Cloud)(nil)
	_ provider.Imager   = (*Cloud)(nil)
)

// New opens the project the token belongs to; endpoint "" is Hetzner's
// API (https://api.hetzner.cloud/v1), anything else (a fake's URL in
// tests) replaces it.
func New(token, endpoint string) (*Cloud, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, fmt.Errorf("hetzner: no API token: %w", provider.ErrAuth)
	}
	c := &Cloud{
		Policy:        provider.DefaultPolicy,
		CallTimeout:   60 * time.Second,
		ActionPoll:    time.Second,
		ActionTimeout: 10 * time.Minute,
	}
	hc := &http.Client{Transport: counting{http.DefaultTransport, &c.calls}}
	opts := []hcloud.ClientOption{
		hcloud.WithToken(token),
		hcloud.WithHTTPClient(hc),
		hcloud.WithApplication("moat", ""),
		// One layer of retries: ours. hcloud-go would retry 429s, conflicts
		// and 502/504 five times itself, under each of our attempts.
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}),
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("hetzner: endpoint %q is not an http(s) URL", endpoint)
		}
		opts = append(opts, hcloud.WithEndpoint(endpoint))
	}
	c.client = hcloud.NewClient(opts...)
	return c, nil
}

// counting counts the HTTP requests made, retries included.
type counting struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (t counting) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.rt.RoundTrip(r)
}

// Calls is how many HTTP requests this Cloud made to the API (Hetzner
// allows 3,600 an hour per project).
func (c *Cloud) Calls() int64 { return c.calls.Load() }

// Kind is "hetzner".
func (c *Cloud) Kind() string { return "hetzner" }

// do runs one API call under the policy, its error classified.
func (c *Cloud) do(ctx context.Context, what string, f func(context.Context) error) error {
	return c.Policy.Do(ctx, "hetzner: "+what, func(ctx context.Context) error {
		cctx := ctx
		if c.CallTimeout > 0 {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(ctx, c.CallTimeout)
			defer cancel()
		}
		err := f(cctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return err // the caller's context ended: nothing to retry
		case cctx.Err() != nil:
			return fmt.Errorf("%w: no answer within %s: %w", provider.ErrTemporary, c.CallTimeout, err)
		}
		return classify(err, time.Now())
	})
}

// classify maps an hcloud-go error onto provider's classes (wrapping it,
// so the message and Hetzner's code stay).
func classify(err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var he hcloud.Error
	if errors.As(err, &he) {
		switch he.Code {
		case hcloud.ErrorCodeRateLimitExceeded:
			return &provider.RateLimited{RetryAfter: retryAfter(he.Response(), now), Err: err}
		case hcloud.ErrorCodeUnauthorized, hcloud.ErrorCodeForbidden:
			return fmt.Errorf("%w: %w", provider.ErrAuth, err)
		case hcloud.ErrorCodeNotFound:
			return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
		case hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodePlacementError:
			// "we are unable to provision servers for this location"
			// (autoscaler#7038): another type or location may have some.
			return fmt.Errorf("%w: %w", provider.ErrCapacity, err)
		case hcloud.ErrorCodeServerError, hcloud.ErrorCodeServiceError, hcloud.ErrorCodeBadGateway,
			hcloud.ErrorCodeTimeout, hcloud.ErrorCodeUnknownError, hcloud.ErrorCodeMaintenance,
			hcloud.ErrorCodeConflict, hcloud.ErrorCodeLocked, hcloud.ErrorCodeRobotUnavailable:
			return fmt.Errorf("%w: %w", provider.ErrTemporary, err)
		case hcloud.ErrorCodeInvalidInput:
			// A type Hetzner no longer sells in a location is refused as
			// input ("unsupported location for server type"): no capacity
			// there, the next location may do.
			if strings.Contains(strings.ToLower(he.Message), "location") {
				return fmt.Errorf("%w: %w", provider.ErrCapacity, err)
			}
		}
		if r := he.Response(); r != nil && r.Response != nil {
			return classifyStatus(r.StatusCode, r, err, now)
		}
		return err
	}
	if errors.Is(err, hcloud.ErrStatusCode) {
		// An error answer without Hetzner's JSON body (a proxy's page).
		var code int
		if i := strings.LastIndexByte(err.Error(), ' '); i >= 0 {
			code, _ = strconv.Atoi(err.Error()[i+1:])
		}
		return classifyStatus(code, nil, err, now)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		// The request failed on the way (refused, reset, the HTTP client's
		// timeout; the caller's context is alive, see do): try again. A
		// create may have happened: the retry adopts it.
		return fmt.Errorf("%w: %w", provider.ErrTemporary, err)
	}
	return err
}

func classifyStatus(code int, r *hcloud.Response, err error, now time.Time) error {
	switch {
	case code == http.StatusTooManyRequests:
		return &provider.RateLimited{RetryAfter: retryAfter(r, now), Err: err}
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %w", provider.ErrAuth, err)
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
	case code >= 500:
		return fmt.Errorf("%w: %w", provider.ErrTemporary, err)
	}
	return err
}

// retryAfter is how long a rate-limited caller waits. Hetzner's limit is
// a bucket that refills one request per 3600/limit seconds; RateLimit-Reset
// is when it is full again (Unix seconds), RateLimit-Remaining what is
// left. One request is free again after (reset-now)/(limit-remaining), so
// that is the wait (not the time to the full bucket, up to an hour). A
// Retry-After header, if sent, wins; without headers, one second.
func retryAfter(r *hcloud.Response, now time.Time) time.Duration {
	if r == nil || r.Response == nil {
		return time.Second
	}
	return retryAfterHeaders(r.Header, now)
}

func retryAfterHeaders(h http.Header, now time.Time) time.Duration {
	if s := strings.TrimSpace(h.Get("Retry-After")); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n <= 3600 {
			return time.Duration(n) * time.Second
		}
	}
	limit, err1 := strconv.ParseInt(strings.TrimSpace(h.Get("RateLimit-Limit")), 10, 64)
	remaining, err2 := strconv.ParseInt(strings.TrimSpace(h.Get("RateLimit-Remaining")), 10, 64)
	reset, err3 := strconv.ParseInt(strings.TrimSpace(h.Get("RateLimit-Reset")), 10, 64)
	if err3 != nil || reset <= 0 || reset > now.Unix()+24*3600 {
		return time.Second
	}
	full := time.Unix(reset, 0).Sub(now)
	if full <= 0 {
		return 0
	}
	if err1 == nil && err2 == nil && limit > 0 && remaining >= 0 && remaining < limit {
		return min(full/time.Duration(limit-remaining)+time.Second/10, full)
	}
	return min(full, time.Second)
}

// Types lists the x86 server types Hetzner sells, one entry per type and
// location where it is available, with that location's gross prices (EUR):
// look a price up by name and region. Deprecated types and locations are
// left out: nothing new should be bought there. Arm types are too: the
// pool's image and moat's binary are x86.
func (c *Cloud) Types(ctx context.Context) ([]provider.ServerType, error) {
	var all []*hcloud.ServerType
	for page := 1; page > 0 && page <= maxPages; {
		var next int
		err := c.do(ctx, "list server types", func(ctx context.Context) error {
			got, resp, err := c.client.ServerType.List(ctx, hcloud.ServerTypeListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: 50}})
			if err != nil {
				return err
			}
			all = append(all, got...)
			next = nextPage(resp)
			return nil
		})
		if err != nil {
			return nil, err
		}
		page = next
	}
	return typesFrom(all), nil
}

func typesFrom(all []*hcloud.ServerType) []provider.ServerType {
	var out []provider.ServerType
	for _, t := range all {
		if t == nil || t.IsDeprecated() || (t.Architecture != "" && t.Architecture != hcloud.ArchitectureX86) {
			continue
		}
		// Locations says where the type can be bought now; prices are
		// listed even where it cannot (autoscaler#7088).
		avail := map[string]bool{}
		for _, l := range t.Locations {
			if l.Location != nil && l.Available && !l.IsDeprecated() {
				avail[l.Location.Name] = true
			}
		}
		for _, p := range t.Pricings {
			if p.Location == nil || (len(t.Locations) > 0 && !avail[p.Location.Name]) {
				continue
			}
			hourly, err1 := strconv.ParseFloat(p.Hourly.Gross, 64)
			monthly, err2 := strconv.ParseFloat(p.Monthly.Gross, 64)
			if err1 != nil || err2 != nil || hourly < 0 || monthly < 0 {
				continue
			}
			out = append(out, provider.ServerType{
				Name:         t.Name,
				CPUMilli:     int64(t.Cores) * 1000,
				MemoryBytes:  int64(float64(t.Memory) * (1 << 30)),
				DiskBytes:    int64(t.Disk) << 30,
				Regions:      []string{p.Location.Name},
				Hourly:       hourly,
				Monthly:      monthly,
				Currency:     "EUR",
				BilledHourly: true,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Regions[0] < out[j].Regions[0]
	})
	return out
}

func nextPage(resp *hcloud.Response) int {
	if resp == nil || resp.Meta.Pagination == nil {
		return 0
	}
	return resp.Meta.Pagination.NextPage
}

// Create creates the server, started, and waits for Hetzner's create
// action. A retried create (the first answer lost: 5xx, a timeout) finds
// the name taken and adopts that server when it carries the request's
// labels (a request without labels adopts nothing), so a lost answer
// leaks nothing. If the create action fails or
// never ends, Create destroys the server and returns the error (and the
// server, so a caller can try the destroy again if that failed too).
func (c *Cloud) Create(ctx context.Context, req provider.CreateRequest) (provider.Server, error) {
	if req.Name == "" || req.Type == "" || req.Image == "" {
		return provider.Server{}, fmt.Errorf("hetzner: create: name, type and image are required")
	}
	opts := hcloud.ServerCreateOpts{
		Name:             req.Name,
		ServerType:       &hcloud.ServerType{Name: req.Type},
		UserData:         req.UserData,
		Labels:           req.Labels,
		StartAfterCreate: hcloud.Ptr(true),
		Image:            imageRef(req.Image),
	}
	if req.Region != "" {
		opts.Location = &hcloud.Location{Name: req.Region}
	}
	var (
		srv    *hcloud.Server
		action *hcloud.Action
	)
	what := fmt.Sprintf("create server %s (%s in %s)", req.Name, req.Type, req.Region)
	err := c.do(ctx, what, func(ctx context.Context) error {
		res, _, err := c.client.Server.Create(ctx, opts)
		if err == nil {
			srv, action = res.Server, res.Action
			return nil
		}
		if !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
			return err
		}
		// The name is taken: ours from an earlier attempt, or someone else's.
		got, _, gerr := c.client.Server.GetByName(ctx, req.Name)
		if gerr != nil {
			return gerr
		}
		if got == nil {
			// Not listed yet (lists lag behind creates): look again later.
			return fmt.Errorf("%w: name %s taken but not listed yet: %w", provider.ErrTemporary, req.Name, err)
		}
		if len(req.Labels) == 0 || !hasLabels(got.Labels, req.Labels) {
			return fmt.Errorf("hetzner: a server named %s exists without this pool's labels: %w", req.Name, err)
		}
		slog.Info("hetzner create adopted", "server", req.Name, "id", got.ID)
		srv, action = got, nil
		return nil
	})
	if err != nil {
		return provider.Server{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, c.ActionTimeout)
	defer cancel()
	if action != nil {
		err = c.wait(wctx, what, action)
	} else {
		err = c.waitCreated(wctx, what, srv.ID)
	}
	if err == nil {
		var got provider.Server
		got, err = c.Get(ctx, strconv.FormatInt(srv.ID, 10))
		if err == nil {
			return got, nil
		}
	}
	s := toServer(srv)
	// The server exists but did not come up: destroy it, on a context of
	// its own (ctx may be what ended).
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), c.ActionTimeout)
	defer dcancel()
	if derr := c.Destroy(dctx, s.ID); derr != nil {
		return s, fmt.Errorf("%w (and destroying server %s failed: %v)", err, s.ID, derr)
	}
	return s, fmt.Errorf("%w (server %s destroyed)", err, s.ID)
}

func imageRef(image string) *hcloud.Image {
	if id, err := strconv.ParseInt(image, 10, 64); err == nil && id > 0 {
		return &hcloud.Image{ID: id}
	}
	return &hcloud.Image{Name: image}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// wait polls an action until it ends; an action that ends in error is that
// error (final: the same action will not succeed on a second look).
func (c *Cloud) wait(ctx context.Context, what string, a *hcloud.Action) error {
	for n := 0; a.Status == hcloud.ActionStatusRunning; n++ {
		t := time.NewTimer(c.pollWait(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("hetzner: %s: action %d (%s) still running: %w", what, a.ID, a.Command, ctx.Err())
		case <-t.C:
		}
		err := c.do(ctx, fmt.Sprintf("%s: poll action %d", what, a.ID), func(ctx context.Context) error {
			got, _, err := c.client.Server.Action.GetByID(ctx, a.ID)
			if err != nil {
				return err
			}
			if got == nil {
				return fmt.Errorf("%w: action %d", provider.ErrNotFound, a.ID)
			}
			a = got
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := a.Error(); err != nil {
		return fmt.Errorf("hetzner: %s: action %d (%s) failed: %w", what, a.ID, a.Command, err)
	}
	return nil
}

// pollWait is the wait before the nth look (from 0) at something running.
func (c *Cloud) pollWait(n int) time.Duration {
	return min(c.ActionPoll<<min(n, 3), 5*c.ActionPoll)
}

// waitCreated waits for an adopted server (whose create action we never
// saw) to leave initializing.
func (c *Cloud) waitCreated(ctx context.Context, what string, id int64) error {
	for n := 0; ; n++ {
		s, err := c.Get(ctx, strconv.FormatInt(id, 10))
		if err != nil {
			return err
		}
		if s.Status != provider.Pending {
			return nil
		}
		t := time.NewTimer(c.pollWait(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("hetzner: %s: server %d still initializing: %w", what, id, ctx.Err())
		case <-t.C:
		}
	}
}

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("hetzner: %q is not a server id: %w", id, provider.ErrNotFound)
	}
	return n, nil
}

// Get reports one server; ErrNotFound once it is gone.
func (c *Cloud) Get(ctx context.Context, id string) (provider.Server, error) {
	n, err := parseID(id)
	if err != nil {
		return provider.Server{}, err
	}
	var s *hcloud.Server
	err = c.do(ctx, "get server "+id, func(ctx context.Context) error {
		got, _, err := c.client.Server.GetByID(ctx, n)
		if err != nil {
			return err
		}
		if got == nil { // hcloud-go answers a 404 with nil, nil
			return fmt.Errorf("server %s: %w", id, provider.ErrNotFound)
		}
		s = got
		return nil
	})
	if err != nil {
		return provider.Server{}, err
	}
	return toServer(s), nil
}

// List returns every server carrying all the labels, every page, each
// page retried on its own.
func (c *Cloud) List(ctx context.Context, labels map[string]string) ([]provider.Server, error) {
	sel := selector(labels)
	var out []provider.Server
	for page := 1; page > 0 && page <= maxPages; {
		var next int
		err := c.do(ctx, fmt.Sprintf("list servers %q page %d", sel, page), func(ctx context.Context) error {
			got, resp, err := c.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: 50, LabelSelector: sel}})
			if err != nil {
				return err
			}
			for _, s := range got {
				if s != nil && hasLabels(s.Labels, labels) {
					out = append(out, toServer(s))
				}
			}
			next = nextPage(resp)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if next != 0 && next <= page {
			return nil, fmt.Errorf("hetzner: list servers: page %d says the next is %d", page, next)
		}
		page = next
	}
	// A server moving between pages while we read could be seen twice.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, s := range out {
		if !seen[s.ID] {
			seen[s.ID] = true
			uniq = append(uniq, s)
		}
	}
	return uniq, nil
}

// selector is Hetzner's label selector for "all these labels": k=v,k=v in
// key order.
func selector(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// Destroy deletes the server and waits for the delete action; one already
// gone is not an error.
func (c *Cloud) Destroy(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return nil // no such server can exist
	}
	var a *hcloud.Action
	err = c.do(ctx, "destroy server "+id, func(ctx context.Context) error {
		res, _, err := c.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: n})
		if err != nil {
			return err
		}
		a = res.Action
		return nil
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if a == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.ActionTimeout)
	defer cancel()
	return c.wait(wctx, "destroy server "+id, a)
}

// Snapshot powers the server off and images it (type snapshot), waiting
// for both actions; the image's id is what pools create servers from.
func (c *Cloud) Snapshot(ctx context.Context, serverID, name string) (string, error) {
	n, err := parseID(serverID)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*c.ActionTimeout)
	defer cancel()
	srv := &hcloud.Server{ID: n}
	var off *hcloud.Action
	what := "power off server " + serverID
	if err := c.do(wctx, what, func(ctx context.Context) error {
		a, _, err := c.client.Server.Poweroff(ctx, srv)
		off = a
		return err
	}); err != nil {
		return "", err
	}
	if err := c.wait(wctx, what, off); err != nil {
		return "", err
	}
	var res hcloud.ServerCreateImageResult
	what = "snapshot server " + serverID
	if err := c.do(wctx, what, func(ctx context.Context) error {
		r, _, err := c.client.Server.CreateImage(ctx, srv, &hcloud.ServerCreateImageOpts{
			Type:        hcloud.ImageTypeSnapshot,
			Description: hcloud.Ptr(name),
			Labels:      map[string]string{"moat-image": labelValue(name)},
		})
		res = r
		return err
	}); err != nil {
		return "", err
	}
	if res.Image == nil {
		return "", fmt.Errorf("hetzner: %s: the answer names no image", what)
	}
	id := strconv.FormatInt(res.Image.ID, 10)
	if err := c.wait(wctx, what, res.Action); err != nil {
		// An image that did not finish is of no use; do not leave it.
		if derr := c.DeleteImage(context.WithoutCancel(ctx), id); derr != nil {
			return "", fmt.Errorf("%w (and deleting image %s failed: %v)", err, id, derr)
		}
		return "", err
	}
	return id, nil
}

// labelValue fits a name into a Hetzner label value (63 characters of
// letters, digits, '-', '_', '.', alphanumeric at both ends).
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	out := strings.Trim(string(b[:min(len(b), 63)]), "-_.")
	if out == "" {
		return "image"
	}
	return out
}

// DeleteImage deletes a snapshot; one already gone is not an error.
func (c *Cloud) DeleteImage(ctx context.Context, image string) error {
	n, err := strconv.ParseInt(image, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("hetzner: %q is not a snapshot id (system images are not deleted)", image)
	}
	err = c.do(ctx, "delete image "+image, func(ctx context.Context) error {
		_, err := c.client.Image.Delete(ctx, &hcloud.Image{ID: n})
		return err
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return err
}

func status(s hcloud.ServerStatus) provider.Status {
	switch s {
	case hcloud.ServerStatusInitializing, hcloud.ServerStatusStarting:
		return provider.Pending
	case hcloud.ServerStatusRunning, hcloud.ServerStatusMigrating, hcloud.ServerStatusRebuilding:
		return provider.Running
	case hcloud.ServerStatusOff, hcloud.ServerStatusStopping:
		return provider.Off
	case hcloud.ServerStatusDeleting:
		return provider.Deleting
	}
	return provider.Pending
}

func toServer(s *hcloud.Server) provider.Server {
	if s == nil {
		return provider.Server{}
	}
	out := provider.Server{
		ID:      strconv.FormatInt(s.ID, 10),
		Name:    s.Name,
		Labels:  s.Labels,
		Status:  status(s.Status),
		Created: s.Created,
	}
	if s.ServerType != nil {
		out.Type = s.ServerType.Name
	}
	if s.Location != nil {
		out.Region = s.Location.Name
	}
	if s.Image != nil {
		if s.Image.Type == hcloud.ImageTypeSystem && s.Image.Name != "" {
			out.Image = s.Image.Name
		} else {
			out.Image = strconv.FormatInt(s.Image.ID, 10)
		}
	}
	if ip := s.PublicNet.IPv4.IP; ip != nil && !s.PublicNet.IPv4.IsUnspecified() {
		out.IPv4 = ip.String()
	}
	return out
}
