// Package fake is DigitalOcean's API as its reference describes it, served
// on 127.0.0.1 for tests: the endpoints moat uses (sizes; droplets created,
// listed by tag or name page by page, got and deleted; the droplet actions
// power_off and snapshot, polled through /v2/actions; snapshots listed and
// deleted), with the status codes (202 on create, 201 on an action, 204 on
// delete), links.pages and meta.total, the RateLimit-* headers, 429 with
// Retry-After past 250 requests a minute, and error bodies
// {"id": ..., "message": ...}. A droplet created here becomes a machine of
// a provider.Machines (a real network-namespace node with provider/local's
// Cloud). Tests inject failures per route: 429, 500, no capacity for a size
// or region, an answer held until the client gave up, a droplet listed
// late, a droplet that never boots. Its API is shaped as
// provider/hetzner/fake's.
package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatcloud/moat/internal/provider"
)

// Kind is a failure to inject.
type Kind int

const (
	// RateLimit answers 429 too_many_requests with Retry-After: Delay
	// (whole seconds, rounded up).
	RateLimit Kind = iota + 1
	// ServerError answers 500 server_error.
	ServerError
	// Unavailable (POST /v2/droplets) answers 422 "Size is not available
	// in this region.", as DigitalOcean does when it has no room.
	Unavailable
	// Hang does the request (a create records and boots the droplet) but
	// holds the answer for Delay or until the client gives up.
	Hang
	// NeverBoot (POST /v2/droplets): the droplet is recorded and stays
	// "new", its create action in progress, for ever.
	NeverBoot
	// Drop does the request (a create records and boots the droplet),
	// waits Delay, then closes the connection without an answer: a
	// proxy's timeout in the middle of a create, as the client sees it.
	Drop
)

// Failure makes the next Times requests of Route (a pattern:
// "POST /v2/droplets", "GET /v2/droplets", "GET /v2/droplets/{id}",
// "DELETE /v2/droplets/{id}", "POST /v2/droplets/{id}/actions",
// "GET /v2/actions/{id}", ...; "" any) fail as Kind. Type (a size slug)
// and Region, if set, restrict a failure of POST /v2/droplets to creates
// of that size or region.
type Failure struct {
	Route  string
	Kind   Kind
	Times  int // default 1
	Type   string
	Region string
	Delay  time.Duration
}

// Options configure a fake.
type Options struct {
	Token       string        // the bearer token it accepts (default "dop_v1_fake")
	PageSize    int           // the most entries a page holds (default and at most 200, DigitalOcean's cap)
	PerMinute   int           // requests a minute (default 250)
	PerHour     int           // requests an hour (default 5,000)
	ListDelay   time.Duration // a new droplet shows in GET /v2/droplets only this long after its create
	Sizes       []Size        // sizes sold (default DefaultSizes)
	ActionDelay time.Duration // how long power_off and snapshot stay in-progress (default 50 ms)
}

// Size is a droplet size the fake sells.
type Size struct {
	Slug         string   `json:"slug"`
	Memory       int      `json:"memory"` // MiB
	Vcpus        int      `json:"vcpus"`
	Disk         int      `json:"disk"` // GB
	Transfer     float64  `json:"transfer"`
	PriceMonthly float64  `json:"price_monthly"`
	PriceHourly  float64  `json:"price_hourly"`
	Regions      []string `json:"regions"`
	Available    bool     `json:"available"`
	Description  string   `json:"description"`
}

// DefaultSizes are a few of DigitalOcean's basic sizes at their list
// prices (USD), and one listed as unavailable.
var DefaultSizes = []Size{
	{"s-1vcpu-1gb", 1024, 1, 25, 1, 6, 0.00893, []string{"ams3", "fra1", "nyc3"}, true, "Basic"},
	{"s-1vcpu-2gb", 2048, 1, 50, 2, 12, 0.01786, []string{"ams3", "fra1", "nyc3"}, true, "Basic"},
	{"s-2vcpu-2gb", 2048, 2, 60, 3, 18, 0.02679, []string{"ams3", "fra1", "nyc3"}, true, "Basic"},
	{"s-2vcpu-4gb", 4096, 2, 80, 4, 24, 0.03571, []string{"ams3", "fra1", "nyc3"}, true, "Basic"},
	{"s-4vcpu-8gb", 8192, 4, 160, 5, 48, 0.07143, []string{"ams3", "nyc3"}, true, "Basic"},
	{"c-2", 4096, 2, 25, 4, 42, 0.0625, []string{"nyc3"}, false, "CPU-Optimized"},
}

// The one distribution image the fake offers; droplets made from it boot
// the Machines image "debian-12".
const (
	SystemImage   = "debian-12-x64"
	SystemImageID = 7000001
)

// Fake is a fake DigitalOcean API.
type Fake struct {
	m       provider.Machines
	opt     Options
	srv     *httptest.Server
	closing chan struct{}
	ctx     context.Context // ends boots and actions on Close
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	droplets map[int]*droplet
	actions  map[int]*action
	images   map[int]*image
	owner    map[string]int // machine name -> the droplet it stands for
	nextID   int
	sent     []time.Time // requests counted within the last hour
	failures []*Failure
	requests map[string]int
	bootErrs []error
}

// Server is what the fake holds about one droplet.
type Server struct {
	ID       int
	Name     string
	Size     string
	Region   string
	Image    string // what Machines booted it from
	Tags     []string
	Status   string // new, active, off
	IPv4     string
	UserData string
	Created  time.Time
}

type droplet struct {
	Server
	size     Size
	image    *image
	listedAt time.Time
	snaps    []int
	machine  string        // the Machines name standing for it ("" until its boot starts)
	booted   chan struct{} // closed once the boot attempt ended (or will never run)
	cancel   context.CancelFunc
}

type action struct {
	ID        int
	Type      string
	Status    string
	Droplet   int
	Region    string
	Started   time.Time
	Completed time.Time
}

type image struct {
	ID           int
	Name         string
	Slug         string
	Distribution string
	Type         string // "base" or "snapshot"
	Machine      string // the provider.Machines image
	Regions      []string
	Created      time.Time
}

// New starts a fake on 127.0.0.1 whose droplets are machines of m.
func New(m provider.Machines, o Options) (*Fake, error) {
	if o.Token == "" {
		o.Token = "dop_v1_fake"
	}
	if o.PageSize <= 0 || o.PageSize > 200 {
		o.PageSize = 200
	}
	if o.PerMinute <= 0 {
		o.PerMinute = 250
	}
	if o.PerHour <= 0 {
		o.PerHour = 5000
	}
	if o.Sizes == nil {
		o.Sizes = DefaultSizes
	}
	o.Sizes = slices.Clone(o.Sizes)
	if o.ActionDelay <= 0 {
		o.ActionDelay = 50 * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake digitalocean: listen: %w", err)
	}
	f := &Fake{m: m, opt: o, closing: make(chan struct{}), droplets: map[int]*droplet{}, actions: map[int]*action{},
		images: map[int]*image{}, owner: map[string]int{}, nextID: 100000, requests: map[string]int{}}
	f.ctx, f.stop = context.WithCancel(context.Background())
	f.images[SystemImageID] = &image{ID: SystemImageID, Name: "12 x64", Slug: SystemImage, Distribution: "Debian",
		Type: "base", Machine: "debian-12", Regions: []string{"ams3", "fra1", "nyc3"}, Created: time.Now().UTC()}
	mux := http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /v2/sizes":                   f.listSizes,
		"POST /v2/droplets":               f.createDroplet,
		"GET /v2/droplets":                f.listDroplets,
		"GET /v2/droplets/{id}":           f.getDroplet,
		"DELETE /v2/droplets/{id}":        f.deleteDroplet,
		"POST /v2/droplets/{id}/actions":  f.dropletAction,
		"GET /v2/droplets/{id}/actions":   f.listDropletActions,
		"GET /v2/droplets/{id}/snapshots": f.listSnapshots,
		"GET /v2/actions/{id}":            f.getAction,
		"GET /v2/images/{id}":             f.getImage,
		"DELETE /v2/images/{id}":          f.deleteImage,
	} {
		mux.Handle(pattern, f.guard(pattern, h))
	}
	mux.Handle("/", f.guard("", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
	}))
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	return f, nil
}

// URL is the endpoint to give digitalocean.New (godo.SetBaseURL).
func (f *Fake) URL() string { return f.srv.URL + "/" }

// Token is the token the fake accepts.
func (f *Fake) Token() string { return f.opt.Token }

// Close stops serving, ends boots and actions under way, and destroys the
// machines still standing for droplets.
func (f *Fake) Close() {
	select {
	case <-f.closing:
		return
	default:
	}
	close(f.closing)
	f.srv.CloseClientConnections()
	f.srv.Close()
	f.stop()
	f.wg.Wait()
	f.mu.Lock()
	var names []string
	for name := range f.owner {
		names = append(names, name)
	}
	f.owner = map[string]int{}
	f.mu.Unlock()
	for _, name := range names {
		if err := f.m.Destroy(context.Background(), name); err != nil {
			slog.Warn("fake digitalocean: destroy on close", "machine", name, "err", err)
		}
	}
}

// Inject queues a failure; failures are used in the order injected.
func (f *Fake) Inject(x Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if x.Times <= 0 {
		x.Times = 1
	}
	f.failures = append(f.failures, &x)
}

// Failures are the injected failures not used up yet, in order.
func (f *Fake) Failures() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Failure, 0, len(f.failures))
	for _, x := range f.failures {
		out = append(out, *x)
	}
	return out
}

// SetListDelay changes how long new droplets stay out of lists.
func (f *Fake) SetListDelay(d time.Duration) {
	f.mu.Lock()
	f.opt.ListDelay = d
	f.mu.Unlock()
}

// SetPageSize changes the most entries a page holds.
func (f *Fake) SetPageSize(n int) {
	f.mu.Lock()
	f.opt.PageSize = min(max(n, 1), 200)
	f.mu.Unlock()
}

// Servers is every droplet the fake holds (lists' delay ignored), by id.
func (f *Fake) Servers() []Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Server, 0, len(f.droplets))
	for _, d := range f.droplets {
		s := d.Server
		s.Tags = slices.Clone(s.Tags)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Images is the ids of the snapshots the fake holds.
func (f *Fake) Images() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, i := range f.images {
		if i.Type == "snapshot" {
			out = append(out, i.ID)
		}
	}
	sort.Ints(out)
	return out
}

// Requests is how many requests a route got ("POST /v2/droplets"; "" all),
// 429s and injected failures included.
func (f *Fake) Requests(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if route == "" {
		n := 0
		for _, c := range f.requests {
			n += c
		}
		return n
	}
	return f.requests[route]
}

// BootErrors are the errors Machines returned (boots, destroys, snapshots).
func (f *Fake) BootErrors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bootErrs)
}

// guard authenticates, counts, applies the rate limits and the injected
// failures, and sets the RateLimit-* headers, as DigitalOcean does on
// every answer.
func (f *Fake) guard(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", fmt.Sprintf("%016x", time.Now().UnixNano()))
		now := time.Now()
		f.mu.Lock()
		f.requests[route]++
		if r.Header.Get("Authorization") != "Bearer "+f.opt.Token {
			f.mu.Unlock()
			writeError(w, http.StatusUnauthorized, "unauthorized", "Unable to authenticate you.")
			return
		}
		cut := slices.IndexFunc(f.sent, func(t time.Time) bool { return now.Sub(t) < time.Hour })
		if cut < 0 {
			cut = len(f.sent)
		}
		f.sent = f.sent[cut:]
		inMinute := 0
		for _, t := range f.sent {
			if now.Sub(t) < time.Minute {
				inMinute++
			}
		}
		var limited time.Duration
		switch {
		case inMinute >= f.opt.PerMinute:
			limited = max(f.sent[len(f.sent)-inMinute].Add(time.Minute).Sub(now), time.Second)
		case len(f.sent) >= f.opt.PerHour:
			limited = max(f.sent[0].Add(time.Hour).Sub(now), time.Second)
		default:
			f.sent = append(f.sent, now)
		}
		remaining := max(f.opt.PerHour-len(f.sent), 0)
		reset := now.Add(time.Hour)
		if len(f.sent) > 0 {
			reset = f.sent[0].Add(time.Hour)
		}
		fail := f.takeFailure(route, r)
		f.mu.Unlock()
		w.Header().Set("RateLimit-Limit", strconv.Itoa(f.opt.PerHour))
		w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		if limited > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((limited+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded.")
			return
		}
		if fail == nil {
			h(w, r)
			return
		}
		switch fail.Kind {
		case RateLimit:
			w.Header().Set("Retry-After", strconv.Itoa(int((fail.Delay+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded.")
		case ServerError:
			writeError(w, http.StatusInternalServerError, "server_error", "Server was unable to give you a response.")
		case Unavailable:
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Size is not available in this region.")
		case NeverBoot:
			h(w, r.WithContext(context.WithValue(r.Context(), neverBootKey{}, true)))
		case Drop:
			h(httptest.NewRecorder(), r)
			select {
			case <-time.After(fail.Delay):
			case <-r.Context().Done():
			case <-f.closing:
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case Hang:
			rec := httptest.NewRecorder()
			h(rec, r)
			t := time.NewTimer(fail.Delay)
			if fail.Delay <= 0 {
				t.Stop()
			}
			select {
			case <-r.Context().Done():
			case <-f.closing:
			case <-t.C:
			}
			t.Stop()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		}
	})
}

type neverBootKey struct{}

// takeFailure returns the first failure matching this request and uses it
// up. A create's body is read (and put back) to match size and region.
func (f *Fake) takeFailure(route string, r *http.Request) *Failure {
	var size, region string
	peeked := false
	for i, x := range f.failures {
		if x.Route != "" && x.Route != route {
			continue
		}
		if x.Type != "" || x.Region != "" {
			if !peeked {
				size, region = peekPlace(r)
				peeked = true
			}
			if (x.Type != "" && x.Type != size) || (x.Region != "" && x.Region != region) {
				continue
			}
		}
		x.Times--
		if x.Times <= 0 {
			f.failures = slices.Delete(f.failures, i, i+1)
		}
		return x
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg, "request_id": w.Header().Get("X-Request-Id")})
}

// page cuts items for ?page=&per_page= and writes {key: items, links, meta}.
func page[T any](f *Fake, w http.ResponseWriter, r *http.Request, key string, items []T) {
	q := r.URL.Query()
	f.mu.Lock()
	pageMax := f.opt.PageSize
	f.mu.Unlock()
	per := 20
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		per = v
	}
	per = min(per, 200, pageMax)
	n := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		n = v
	}
	last := max((len(items)+per-1)/per, 1)
	lo, hi := min((n-1)*per, len(items)), min(n*per, len(items))
	link := func(p int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		return strings.TrimSuffix(f.URL(), "/") + r.URL.Path + "?" + q.Encode()
	}
	pages := map[string]string{}
	if n > 1 {
		pages["first"], pages["prev"] = link(1), link(min(n-1, last))
	}
	if n < last {
		pages["next"], pages["last"] = link(n+1), link(last)
	}
	links := map[string]any{}
	if len(pages) > 0 {
		links["pages"] = pages
	}
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "links": links, "meta": map[string]int{"total": len(items)}})
}

func (f *Fake) listSizes(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	sizes := slices.Clone(f.opt.Sizes)
	f.mu.Unlock()
	page(f, w, r, "sizes", sizes)
}

type createRequest struct {
	Name     string          `json:"name"`
	Region   string          `json:"region"`
	Size     string          `json:"size"`
	Image    json.RawMessage `json:"image"`
	SSHKeys  []any           `json:"ssh_keys"`
	UserData string          `json:"user_data"`
	Tags     []string        `json:"tags"`
}

func peekPlace(r *http.Request) (size, region string) {
	if r.Body == nil {
		return "", ""
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
	var cr createRequest
	json.Unmarshal(b, &cr)
	return cr.Size, cr.Region
}

var (
	hostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$`)
	tagName  = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,255}$`)
)

func (f *Fake) createDroplet(w http.ResponseWriter, r *http.Request) {
	var cr createRequest
	if err := json.NewDecoder(r.Body).Decode(&cr); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "The request body is not valid JSON.")
		return
	}
	if !hostname.MatchString(cr.Name) {
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
		return
	}
	for _, t := range cr.Tags {
		if !tagName.MatchString(t) {
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "tag names must match the regular expression ^[a-zA-Z0-9:\\-_]{1,255}$")
			return
		}
	}
	if len(cr.UserData) > 64<<10 {
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "user_data is too long (64 KiB at most)")
		return
	}
	f.mu.Lock()
	size, ok := f.size(cr.Size)
	if !ok {
		f.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "You specified an invalid size for Droplet creation.")
		return
	}
	if !slices.Contains(size.Regions, cr.Region) {
		f.mu.Unlock()
		if f.knownRegion(cr.Region) {
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Size is not available in this region.")
		} else {
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "You specified an invalid region for Droplet creation.")
		}
		return
	}
	if !size.Available {
		f.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "The size you selected is temporarily unavailable.")
		return
	}
	img := f.findImage(cr.Image)
	if img == nil {
		f.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "You specified an invalid image for Droplet creation.")
		return
	}
	now := time.Now().UTC()
	f.nextID++
	d := &droplet{Server: Server{ID: f.nextID, Name: cr.Name, Size: size.Slug, Region: cr.Region, Image: img.Machine,
		UserData: cr.UserData, Tags: slices.Compact(slices.Sorted(slices.Values(cr.Tags))), Status: "new",
		Created: now.Truncate(time.Second)}, size: size, image: img, listedAt: now.Add(f.opt.ListDelay), booted: make(chan struct{})}
	f.droplets[d.ID] = d
	f.nextID++
	a := &action{ID: f.nextID, Type: "create", Status: "in-progress", Droplet: d.ID, Region: d.Region, Started: now}
	f.actions[a.ID] = a
	body := map[string]any{"droplet": f.dropletJSON(d), "links": map[string]any{"actions": []map[string]any{
		{"id": a.ID, "rel": "create", "href": fmt.Sprintf("%sv2/actions/%d", f.URL(), a.ID)}}}}
	if r.Context().Value(neverBootKey{}) == nil {
		ctx, cancel := context.WithCancel(f.ctx)
		d.cancel = cancel
		f.wg.Add(1)
		go f.boot(ctx, d, a)
	} else {
		close(d.booted)
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusAccepted, body)
}

// boot makes the droplet's machine; the droplet is "active" with its
// address once the machine is up.
func (f *Fake) boot(ctx context.Context, d *droplet, a *action) {
	defer f.wg.Done()
	defer close(d.booted)
	f.mu.Lock()
	// DigitalOcean lets two droplets share a name; machines cannot, so a
	// second droplet of a name gets the machine NAME-ID (its hostname is
	// still what its user data says).
	d.machine = d.Name
	if _, taken := f.owner[d.machine]; taken {
		d.machine = fmt.Sprintf("%s-%d", d.Name, d.ID)
	}
	f.owner[d.machine] = d.ID
	f.mu.Unlock()
	ip, err := f.m.Boot(ctx, d.machine, d.image.Machine, d.UserData)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.bootErrs = append(f.bootErrs, fmt.Errorf("droplet %d (%s): %w", d.ID, d.Name, err))
		a.Status, a.Completed = "errored", time.Now().UTC()
		return
	}
	if _, alive := f.droplets[d.ID]; alive {
		d.Status, d.IPv4 = "active", ip
	}
	a.Status, a.Completed = "completed", time.Now().UTC()
}

func (f *Fake) size(slug string) (Size, bool) {
	for _, z := range f.opt.Sizes {
		if z.Slug == slug {
			return z, true
		}
	}
	return Size{}, false
}

func (f *Fake) knownRegion(region string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, z := range f.opt.Sizes {
		if slices.Contains(z.Regions, region) {
			return true
		}
	}
	return false
}

// findImage resolves a create's image: a slug string or a numeric id.
func (f *Fake) findImage(raw json.RawMessage) *image {
	var slug string
	if json.Unmarshal(raw, &slug) == nil {
		for _, i := range f.images {
			if i.Slug != "" && i.Slug == slug {
				return i
			}
		}
		return nil
	}
	var id int
	if json.Unmarshal(raw, &id) == nil {
		return f.images[id]
	}
	return nil
}

func (f *Fake) listDroplets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tag, name := q.Get("tag_name"), q.Get("name")
	now := time.Now()
	f.mu.Lock()
	var ids []int
	for id, d := range f.droplets {
		if now.Before(d.listedAt) {
			continue
		}
		if tag != "" && !slices.ContainsFunc(d.Tags, func(t string) bool { return strings.EqualFold(t, tag) }) {
			continue
		}
		if name != "" && !strings.EqualFold(d.Name, name) {
			continue
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.dropletJSON(f.droplets[id]))
	}
	f.mu.Unlock()
	page(f, w, r, "droplets", out)
}

func (f *Fake) dropletOf(w http.ResponseWriter, r *http.Request) *droplet {
	id, err := strconv.Atoi(r.PathValue("id"))
	d := f.droplets[id]
	if err != nil || d == nil {
		writeError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return nil
	}
	return d
}

func (f *Fake) getDroplet(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	d := f.dropletOf(w, r)
	if d == nil {
		f.mu.Unlock()
		return
	}
	body := map[string]any{"droplet": f.dropletJSON(d)}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// deleteDroplet answers 204 at once; the machine goes in the background
// (after its boot, if one is in flight).
func (f *Fake) deleteDroplet(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	d := f.dropletOf(w, r)
	if d == nil {
		f.mu.Unlock()
		return
	}
	delete(f.droplets, d.ID)
	if d.cancel != nil {
		d.cancel()
	}
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		<-d.booted
		f.mu.Lock()
		mine := d.machine != "" && f.owner[d.machine] == d.ID
		if mine {
			delete(f.owner, d.machine)
		}
		f.mu.Unlock()
		if mine {
			if err := f.m.Destroy(context.Background(), d.machine); err != nil {
				f.mu.Lock()
				f.bootErrs = append(f.bootErrs, fmt.Errorf("destroying droplet %d (%s): %w", d.ID, d.Name, err))
				f.mu.Unlock()
			}
		}
	}()
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) dropletAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "The request body is not valid JSON.")
		return
	}
	f.mu.Lock()
	d := f.dropletOf(w, r)
	if d == nil {
		f.mu.Unlock()
		return
	}
	for _, a := range f.actions {
		if a.Droplet == d.ID && a.Status == "in-progress" && a.Type != "create" {
			f.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet already has a pending event.")
			return
		}
	}
	switch req.Type {
	case "power_off":
		if d.Status == "off" {
			f.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet is already powered off.")
			return
		}
		if d.Status != "active" {
			f.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet is currently being created.")
			return
		}
	case "snapshot":
		if d.Status == "new" {
			f.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet is currently being created.")
			return
		}
	default:
		f.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("%q is not a supported action type.", req.Type))
		return
	}
	f.nextID++
	a := &action{ID: f.nextID, Type: req.Type, Status: "in-progress", Droplet: d.ID, Region: d.Region, Started: time.Now().UTC()}
	f.actions[a.ID] = a
	dur := f.opt.ActionDelay
	body := map[string]any{"action": f.actionJSON(a)}
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		select {
		case <-time.After(dur):
		case <-f.ctx.Done():
			return
		}
		switch req.Type {
		case "power_off":
			f.mu.Lock()
			d.Status = "off"
			a.Status, a.Completed = "completed", time.Now().UTC()
			f.mu.Unlock()
		case "snapshot":
			img, err := f.m.Snapshot(f.ctx, d.machine)
			f.mu.Lock()
			defer f.mu.Unlock()
			if err != nil {
				f.bootErrs = append(f.bootErrs, fmt.Errorf("snapshot of droplet %d: %w", d.ID, err))
				a.Status, a.Completed = "errored", time.Now().UTC()
				return
			}
			f.nextID++
			i := &image{ID: f.nextID, Name: req.Name, Distribution: d.image.Distribution, Type: "snapshot",
				Machine: img, Regions: []string{d.Region}, Created: time.Now().UTC()}
			f.images[i.ID] = i
			d.snaps = append(d.snaps, i.ID)
			a.Status, a.Completed = "completed", time.Now().UTC()
		}
	}()
	writeJSON(w, http.StatusCreated, body)
}

func (f *Fake) listDropletActions(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	d := f.dropletOf(w, r)
	if d == nil {
		f.mu.Unlock()
		return
	}
	var ids []int
	for id, a := range f.actions {
		if a.Droplet == d.ID {
			ids = append(ids, id)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids))) // newest first
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.actionJSON(f.actions[id]))
	}
	f.mu.Unlock()
	page(f, w, r, "actions", out)
}

func (f *Fake) listSnapshots(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	d := f.dropletOf(w, r)
	if d == nil {
		f.mu.Unlock()
		return
	}
	out := make([]map[string]any, 0, len(d.snaps))
	for _, id := range d.snaps {
		if i := f.images[id]; i != nil {
			out = append(out, imageJSON(i))
		}
	}
	f.mu.Unlock()
	page(f, w, r, "snapshots", out)
}

func (f *Fake) getAction(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	a := f.actions[id]
	if a == nil {
		f.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	body := map[string]any{"action": f.actionJSON(a)}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (f *Fake) getImage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	i := f.images[id]
	if i == nil {
		f.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	body := map[string]any{"image": imageJSON(i)}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (f *Fake) deleteImage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	i := f.images[id]
	if i == nil || i.Type != "snapshot" {
		f.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	delete(f.images, id)
	f.mu.Unlock()
	// A Machines that can (provider/local's) deletes the image behind it.
	if d, ok := f.m.(interface {
		DeleteImage(context.Context, string) error
	}); ok {
		if err := d.DeleteImage(r.Context(), i.Machine); err != nil {
			f.mu.Lock()
			f.bootErrs = append(f.bootErrs, fmt.Errorf("deleting image %d (%s): %w", id, i.Machine, err))
			f.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- JSON as the API reference shows it ---

func (f *Fake) dropletJSON(d *droplet) map[string]any {
	v4 := []map[string]any{}
	if d.IPv4 != "" {
		v4 = append(v4, map[string]any{"ip_address": d.IPv4, "netmask": "255.255.240.0", "gateway": gateway(d.IPv4), "type": "public"})
	}
	features := []string{"droplet_agent"}
	return map[string]any{
		"id": d.ID, "name": d.Name, "memory": d.size.Memory, "vcpus": d.size.Vcpus, "disk": d.size.Disk,
		"locked": false, "status": d.Status, "kernel": nil, "created_at": d.Created.Format(time.RFC3339),
		"features": features, "backup_ids": []int{}, "next_backup_window": nil, "snapshot_ids": nonNil(d.snaps),
		"image": imageJSON(d.image), "volume_ids": []string{}, "size": d.size, "size_slug": d.size.Slug,
		"networks": map[string]any{"v4": v4, "v6": []any{}},
		"region":   f.regionJSON(d.Region),
		"tags":     nonNil(d.Tags), "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
	}
}

func (f *Fake) regionJSON(slug string) map[string]any {
	var sizes []string
	for _, z := range f.opt.Sizes {
		if slices.Contains(z.Regions, slug) {
			sizes = append(sizes, z.Slug)
		}
	}
	return map[string]any{"name": strings.ToUpper(slug), "slug": slug, "features": []string{"backups", "ipv6", "metadata"},
		"available": true, "sizes": nonNil(sizes)}
}

func (f *Fake) actionJSON(a *action) map[string]any {
	var completed any
	if !a.Completed.IsZero() {
		completed = a.Completed.Format(time.RFC3339)
	}
	return map[string]any{"id": a.ID, "status": a.Status, "type": a.Type, "started_at": a.Started.Format(time.RFC3339),
		"completed_at": completed, "resource_id": a.Droplet, "resource_type": "droplet",
		"region": f.regionJSON(a.Region), "region_slug": a.Region}
}

func imageJSON(i *image) map[string]any {
	var slug any
	if i.Slug != "" {
		slug = i.Slug
	}
	return map[string]any{"id": i.ID, "name": i.Name, "distribution": i.Distribution, "slug": slug,
		"public": i.Type == "base", "regions": nonNil(i.Regions), "created_at": i.Created.Format(time.RFC3339),
		"type": i.Type, "min_disk_size": 20, "size_gigabytes": 2.36, "description": "", "tags": []string{},
		"status": "available", "error_message": ""}
}

func gateway(ip string) string {
	a := net.ParseIP(ip).To4()
	if a == nil {
		return ""
	}
	return net.IPv4(a[0], a[1], a[2], 1).String()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
