// Package fake serves, on 127.0.0.1, the part of Hetzner's Cloud API
// moat uses, as the API reference describes it: bearer tokens, status
// codes and {"error": {"code", "message"}} bodies, meta.pagination with
// next_page (null on the last page), the RateLimit-Limit/-Remaining/-Reset
// headers of a bucket of 3,600 requests an hour refilled one a second,
// 201 on create with the create action and next_actions, actions running
// then success or error, label selectors. Servers are held in memory and
// stand on a provider.Machines, so a server created through hcloud-go
// becomes a real machine. Failures are injected per route (and per server
// type or location), for the tests of everything that talks to Hetzner.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
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
	// RateLimit answers 429 rate_limit_exceeded (bucket empty headers).
	RateLimit Kind = iota + 1
	// ServerError answers 500 server_error.
	ServerError
	// Unavailable answers 403 resource_unavailable, as Hetzner does when
	// it cannot place a server type in a location (autoscaler#7038).
	Unavailable
	// Hang does the request (a create records and boots the server) but
	// holds the answer for Failure.Delay or until the client gives up.
	Hang
	// NeverBoot (POST /servers only): the server is recorded and stays
	// initializing, its create action running, for ever.
	NeverBoot
	// Silent (POST /servers only): the API says the server runs (actions
	// succeed, status running, an address in TEST-NET-1, 192.0.2.0/24)
	// but no machine stands behind it: its OS never came up, nothing
	// answers on the address.
	Silent
)

// Failure makes the next Times requests of Route (e.g. "POST /servers",
// "GET /servers", "DELETE /servers/{id}", "GET /servers/actions/{id}",
// "" for any) fail as Kind. Type and Location, if set, restrict a failure
// of POST /servers to creates of that server type or location.
type Failure struct {
	Route    string
	Kind     Kind
	Times    int
	Type     string
	Location string
	Delay    time.Duration // Hang: how long (default: until the client leaves)
}

// Options configure a fake.
type Options struct {
	Token     string        // the bearer token it accepts (default "test-token")
	PageSize  int           // the most entries a page holds (default 50, Hetzner's maximum)
	RateLimit int           // requests an hour (default 3,600)
	ListDelay time.Duration // a new server shows in GET /servers only this long after its create
	Types     []Type        // server types sold (default: DefaultTypes)
}

// Type is a server type the fake sells, with a price per location; a
// location in Unsold has a price but cannot be bought (the type shows as
// unavailable there).
type Type struct {
	Name    string
	Cores   int
	Memory  float32 // GB
	Disk    int     // GB
	Arch    string  // "x86" (default) or "arm"
	Hourly  map[string]float64
	Monthly map[string]float64
	Unsold  []string
}

// DefaultTypes: three shared x86 types in three locations and one arm type
// (prices gross EUR, of the shape Hetzner publishes).
var DefaultTypes = []Type{
	{Name: "cx22", Cores: 2, Memory: 4, Disk: 40,
		Hourly:  map[string]float64{"fsn1": 0.0071, "nbg1": 0.0071, "hel1": 0.0071},
		Monthly: map[string]float64{"fsn1": 4.51, "nbg1": 4.51, "hel1": 4.51}},
	{Name: "cx32", Cores: 4, Memory: 8, Disk: 80,
		Hourly:  map[string]float64{"fsn1": 0.0127, "nbg1": 0.0127, "hel1": 0.0127},
		Monthly: map[string]float64{"fsn1": 8.09, "nbg1": 8.09, "hel1": 8.09}},
	{Name: "cpx31", Cores: 4, Memory: 8, Disk: 160,
		Hourly:  map[string]float64{"fsn1": 0.0262, "nbg1": 0.0262, "hel1": 0.0262, "ash": 0.0286},
		Monthly: map[string]float64{"fsn1": 16.41, "nbg1": 16.41, "hel1": 16.41, "ash": 17.84},
		Unsold:  []string{"nbg1"}},
	{Name: "cax11", Cores: 2, Memory: 4, Disk: 40, Arch: "arm",
		Hourly:  map[string]float64{"fsn1": 0.0063},
		Monthly: map[string]float64{"fsn1": 3.95}},
}

var locations = map[string]int64{"fsn1": 1, "nbg1": 2, "hel1": 3, "ash": 4}

// SystemImage is the one system image the fake offers, by name or id.
const (
	SystemImage   = "debian-12"
	SystemImageID = 114690387
)

// Server is a server the fake holds.
type Server struct {
	ID       int64
	Name     string
	Type     string
	Location string
	Image    string // what Machines booted it from
	ImageID  int64
	Labels   map[string]string
	Status   string // initializing, running, off, deleting
	IPv4     string
	UserData string
	Created  time.Time

	visible time.Time     // listed from then on
	booted  chan struct{} // closed once Boot returned (or will never run)
}

type action struct {
	ID       int64
	Command  string
	Status   string
	Started  time.Time
	Finished time.Time
	Code     string
	Message  string
	Res      []resRef
}

type resRef struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

type image struct {
	ID          int64
	Description string
	Status      string // creating, available
	Machine     string // what Machines knows it as
	From        int64
	Labels      map[string]string
	Created     time.Time
}

// Fake is the API. Its zero value is not usable: New.
type Fake struct {
	m   provider.Machines
	opt Options
	srv *httptest.Server

	mu       sync.Mutex
	nextID   int64
	servers  map[int64]*Server
	actions  map[int64]*action
	images   map[int64]*image
	failures []*Failure
	bucket   float64 // requests left
	filled   time.Time
	requests map[string]int
	wg       sync.WaitGroup
	ctx      context.Context
	stop     context.CancelFunc
}

// New starts a fake on 127.0.0.1 backed by m.
func New(m provider.Machines, o Options) (*Fake, error) {
	if o.Token == "" {
		o.Token = "test-token"
	}
	if o.PageSize <= 0 || o.PageSize > 50 {
		o.PageSize = 50
	}
	if o.RateLimit <= 0 {
		o.RateLimit = 3600
	}
	if o.Types == nil {
		o.Types = DefaultTypes
	}
	f := &Fake{m: m, opt: o, nextID: 1000, servers: map[int64]*Server{}, actions: map[int64]*action{},
		images: map[int64]*image{}, bucket: float64(o.RateLimit), filled: time.Now(), requests: map[string]int{}}
	f.ctx, f.stop = context.WithCancel(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake hetzner: listen: %w", err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = l
	f.srv.Start()
	return f, nil
}

// URL is the endpoint to give hcloud.WithEndpoint (…/v1).
func (f *Fake) URL() string { return f.srv.URL + "/v1" }

// Token is the token the fake accepts.
func (f *Fake) Token() string { return f.opt.Token }

// Close stops serving, waits for boots and deletes under way, and destroys
// the machines of the servers still held.
func (f *Fake) Close() {
	f.srv.CloseClientConnections()
	f.srv.Close()
	f.stop()
	f.wg.Wait()
	f.mu.Lock()
	var names []string
	for _, s := range f.servers {
		names = append(names, s.Name)
	}
	f.servers = map[int64]*Server{}
	f.mu.Unlock()
	for _, n := range names {
		if err := f.m.Destroy(context.Background(), n); err != nil {
			slog.Warn("fake hetzner: destroy on close", "server", n, "err", err)
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

// SetListDelay changes how long new servers stay out of lists.
func (f *Fake) SetListDelay(d time.Duration) {
	f.mu.Lock()
	f.opt.ListDelay = d
	f.mu.Unlock()
}

// Servers is every server the fake holds (lists' delay ignored), by id.
func (f *Fake) Servers() []Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Server, 0, len(f.servers))
	for _, s := range f.servers {
		c := *s
		c.booted = nil
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Images is the ids of the snapshots the fake holds.
func (f *Fake) Images() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for id := range f.images {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Requests is how many requests a route got ("POST /servers"), 429s and
// injected failures included; route "" is every request served.
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

// apiError is Hetzner's error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, a ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, a...)}
}

// The status of each code, from the reference's error table.
var (
	errUnauthorized = func() *apiError { return errorf(401, "unauthorized", "unable to authenticate") }
	errNotFound     = func(what string) *apiError { return errorf(404, "not_found", "%s not found", what) }
	errInvalid      = func(format string, a ...any) *apiError { return errorf(400, "invalid_input", format, a...) }
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	route, id, ok := routeOf(r.Method, r.URL.Path)
	f.mu.Lock()
	f.requests[route]++
	now := time.Now()
	f.refill(now)
	if !ok {
		f.mu.Unlock()
		f.writeError(w, now, errNotFound("route "+r.Method+" "+r.URL.Path))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.opt.Token {
		f.mu.Unlock()
		f.writeError(w, now, errUnauthorized())
		return
	}
	if f.bucket < 1 {
		f.mu.Unlock()
		f.writeError(w, now, errorf(429, "rate_limit_exceeded", "limit of %d requests per hour reached", f.opt.RateLimit))
		return
	}
	f.bucket--
	f.mu.Unlock()

	var body createBody
	if route == "POST /servers" {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			f.writeError(w, now, errorf(400, "json_error", "invalid JSON: %v", err))
			return
		}
	}
	fail := f.takeFailure(route, body)
	if fail != nil {
		switch fail.Kind {
		case RateLimit:
			// Answered as if the bucket were empty (the bucket itself is
			// left as it is, so the retry after the wait passes).
			e := errorf(429, "rate_limit_exceeded", "limit of %d requests per hour reached", f.opt.RateLimit)
			h := w.Header()
			h.Set("RateLimit-Limit", strconv.Itoa(f.opt.RateLimit))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
			h.Set("Content-Type", "application/json")
			w.WriteHeader(e.status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": e.code, "message": e.message, "details": map[string]any{}}})
			return
		case ServerError:
			f.writeError(w, now, errorf(500, "server_error", "error within the API backend"))
			return
		case Unavailable:
			f.writeError(w, now, errorf(403, "resource_unavailable", "we are unable to provision servers for this location, try with a different location or try later"))
			return
		}
	}
	status, answer, aerr := f.handle(r, route, id, body, fail)
	if fail != nil && fail.Kind == Hang {
		t := time.NewTimer(fail.Delay)
		if fail.Delay <= 0 {
			t.Stop()
		}
		select {
		case <-r.Context().Done():
		case <-f.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if aerr != nil {
		f.writeError(w, time.Now(), aerr)
		return
	}
	f.writeJSON(w, time.Now(), status, answer)
}

// routeOf names a request's route with ids replaced by {id}.
func routeOf(method, path string) (route string, id int64, ok bool) {
	p, found := strings.CutPrefix(path, "/v1/")
	if !found {
		return method + " " + path, 0, false
	}
	parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for i, s := range parts {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && i > 0 {
			if n <= 0 {
				return method + " " + path, 0, false
			}
			id = n
			parts[i] = "{id}"
		}
	}
	route = method + " /" + strings.Join(parts, "/")
	switch route {
	case "GET /server_types", "GET /servers", "POST /servers", "GET /servers/{id}", "DELETE /servers/{id}",
		"POST /servers/{id}/actions/poweroff", "POST /servers/{id}/actions/create_image",
		"GET /servers/actions/{id}", "GET /actions/{id}", "GET /actions",
		"GET /images/{id}", "DELETE /images/{id}":
		return route, id, true
	}
	return route, id, false
}

func (f *Fake) takeFailure(route string, body createBody) *Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.failures {
		if x.Route != "" && x.Route != route {
			continue
		}
		if x.Type != "" && x.Type != body.ServerType.Name {
			continue
		}
		if x.Location != "" && x.Location != body.Location {
			continue
		}
		if (x.Kind == NeverBoot || x.Kind == Silent || x.Type != "" || x.Location != "") && route != "POST /servers" {
			continue
		}
		x.Times--
		if x.Times <= 0 {
			f.failures = append(f.failures[:i], f.failures[i+1:]...)
		}
		c := *x
		return &c
	}
	return nil
}

// refill adds what the bucket gained since last time (one request per
// 3600/limit seconds, up to the limit).
func (f *Fake) refill(now time.Time) {
	per := time.Hour / time.Duration(f.opt.RateLimit)
	f.bucket = math.Min(float64(f.opt.RateLimit), f.bucket+float64(now.Sub(f.filled))/float64(per))
	f.filled = now
}

func (f *Fake) rateHeaders(w http.ResponseWriter, now time.Time) {
	f.mu.Lock()
	f.refill(now)
	left := math.Floor(f.bucket)
	per := time.Hour / time.Duration(f.opt.RateLimit)
	full := now.Add(time.Duration((float64(f.opt.RateLimit) - f.bucket) * float64(per)))
	f.mu.Unlock()
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(f.opt.RateLimit))
	h.Set("RateLimit-Remaining", strconv.Itoa(int(left)))
	h.Set("RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(full.UnixNano())/1e9)), 10))
}

func (f *Fake) writeError(w http.ResponseWriter, now time.Time, e *apiError) {
	f.writeJSON(w, now, e.status, map[string]any{"error": map[string]any{"code": e.code, "message": e.message, "details": map[string]any{}}})
}

func (f *Fake) writeJSON(w http.ResponseWriter, now time.Time, status int, v any) {
	f.rateHeaders(w, now)
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
