package hetzner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/hetzner/fake"
)

// Options are what a test changes in a Cloud.
type Options struct {
	Policy        provider.Policy
	CallTimeout   time.Duration
	ActionTimeout time.Duration
}

var testOpts = Options{
	Policy:        provider.Policy{Attempts: 5, Base: time.Millisecond, Max: 20 * time.Millisecond},
	CallTimeout:   5 * time.Second,
	ActionTimeout: 10 * time.Second,
}

func newCloud(t *testing.T, token, endpoint string, o Options) *Cloud {
	t.Helper()
	c, err := New(token, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c.Policy, c.CallTimeout, c.ActionTimeout, c.ActionPoll = o.Policy, o.CallTimeout, o.ActionTimeout, 5*time.Millisecond
	return c
}

type env struct {
	c   *Cloud
	f   *fake.Fake
	mem *provider.MemoryMachines
	// known: the servers (by name) the test made on purpose; the cleanup
	// fails the test if the fake holds any other, then destroys them all.
	known map[string]bool
}

func newEnv(t *testing.T, fo fake.Options, o Options) *env {
	t.Helper()
	mem := &provider.MemoryMachines{}
	f, err := fake.New(mem, fo)
	if err != nil {
		t.Fatal(err)
	}
	c := newCloud(t, f.Token(), f.URL(), o)
	e := &env{c: c, f: f, mem: mem, known: map[string]bool{}}
	t.Cleanup(func() {
		e.noneUnknown(t)
		ctx := context.Background()
		for _, s := range f.Servers() {
			if err := c.Destroy(ctx, fmt.Sprint(s.ID)); err != nil {
				t.Errorf("cleanup: destroy %s: %v", s.Name, err)
			}
		}
		if left := f.Servers(); len(left) > 0 {
			t.Errorf("cleanup: the fake still holds %d servers", len(left))
		}
		if m := mem.Machines(); len(m) > 0 {
			t.Errorf("cleanup: machines left: %v", m)
		}
		f.Close()
	})
	return e
}

// noneUnknown: every server the fake holds is one the test knows.
func (e *env) noneUnknown(t *testing.T) {
	t.Helper()
	for _, s := range e.f.Servers() {
		if !e.known[s.Name] {
			t.Errorf("the fake holds server %s (%d, %s) the test does not know", s.Name, s.ID, s.Status)
		}
	}
}

func labels(pool string) map[string]string {
	return map[string]string{provider.LabelCluster: "c1", provider.LabelPool: pool}
}

func (e *env) create(t *testing.T, name, typ, region, pool string) (provider.Server, error) {
	t.Helper()
	e.known[name] = true
	return e.c.Create(context.Background(), provider.CreateRequest{Name: name, Type: typ, Region: region,
		Image: fake.SystemImage, UserData: "#cloud-config\nhostname: " + name + "\n", Labels: labels(pool)})
}

func TestCreateListDestroy(t *testing.T) {
	e := newEnv(t, fake.Options{PageSize: 2}, testOpts)
	ctx := context.Background()
	for i := range 5 {
		pool := "web"
		if i == 4 {
			pool = "db"
		}
		s, err := e.create(t, fmt.Sprintf("n%d", i), "cx22", "fsn1", pool)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != provider.Running || s.IPv4 == "" || s.Type != "cx22" || s.Region != "fsn1" ||
			s.Image != fake.SystemImage || s.Labels[provider.LabelPool] != pool || s.ID == "" {
			t.Fatalf("created %+v", s)
		}
		if m := e.mem.Machines()[s.Name]; m.IPv4 != s.IPv4 || !strings.Contains(m.UserData, "hostname: "+s.Name) {
			t.Fatalf("machine %+v for server %+v", m, s)
		}
	}
	before := e.f.Requests("GET /servers")
	web, err := e.c.List(ctx, labels("web"))
	if err != nil {
		t.Fatal(err)
	}
	if len(web) != 4 {
		t.Fatalf("listed %d servers of pool web, want 4: %+v", len(web), web)
	}
	if pages := e.f.Requests("GET /servers") - before; pages != 2 {
		t.Errorf("listing 4 servers 2 a page took %d requests, want 2", pages)
	}
	all, err := e.c.List(ctx, map[string]string{provider.LabelCluster: "c1"})
	if err != nil || len(all) != 5 {
		t.Fatalf("cluster list: %d servers, %v", len(all), err)
	}
	for _, s := range web {
		if err := e.c.Destroy(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Get(ctx, s.ID); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("get after destroy: %v, want not found", err)
		}
		if err := e.c.Destroy(ctx, s.ID); err != nil {
			t.Fatalf("destroying a server already gone: %v", err)
		}
	}
	if got := e.f.Servers(); len(got) != 1 || got[0].Name != "n4" {
		t.Fatalf("left after destroying pool web: %+v", got)
	}
	if e.c.Calls() == 0 {
		t.Error("no calls counted")
	}
}

func TestTypes(t *testing.T) {
	e := newEnv(t, fake.Options{PageSize: 1}, testOpts)
	types, err := e.c.Types(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]provider.ServerType{}
	for _, ty := range types {
		if len(ty.Regions) != 1 {
			t.Fatalf("type %s with regions %v", ty.Name, ty.Regions)
		}
		got[ty.Name+"/"+ty.Regions[0]] = ty
	}
	if len(got) != 3+3+3 { // cx22, cx32 ×3; cpx31 in fsn1, hel1, ash (not nbg1: unavailable); cax11 is arm
		t.Errorf("types: %v", types)
	}
	cx22 := got["cx22/fsn1"]
	if cx22.CPUMilli != 2000 || cx22.MemoryBytes != 4<<30 || cx22.DiskBytes != 40<<30 || cx22.Hourly != 0.0071 ||
		cx22.Monthly != 4.51 || cx22.Currency != "EUR" || !cx22.BilledHourly {
		t.Errorf("cx22 in fsn1: %+v", cx22)
	}
	if _, ok := got["cpx31/nbg1"]; ok {
		t.Error("cpx31 is listed in nbg1, where it cannot be bought")
	}
	if got["cpx31/ash"].Hourly != 0.0286 {
		t.Errorf("cpx31 in ash: %+v", got["cpx31/ash"])
	}
	if _, ok := got["cax11/fsn1"]; ok {
		t.Error("an arm type is listed")
	}
	if n := e.f.Requests("GET /server_types"); n != 4 {
		t.Errorf("4 types one a page took %d requests", n)
	}
}

func TestRateLimited(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.RateLimit, Times: 2})
	if _, err := e.create(t, "a", "cx22", "fsn1", "web"); err != nil {
		t.Fatal(err)
	}
	if n := e.f.Requests("POST /servers"); n != 3 {
		t.Errorf("%d creates sent, want 3 (two answered 429)", n)
	}
	// More 429s than attempts: a RateLimited error, no server.
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.RateLimit, Times: 10})
	_, err := e.create(t, "b", "cx22", "fsn1", "web")
	var rl *provider.RateLimited
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("err %v, want rate limited with a wait", err)
	}
	if n := e.f.Requests("POST /servers"); n != 3+5 {
		t.Errorf("%d creates sent in all, want 8 (5 attempts of the policy, no retries inside hcloud-go)", n)
	}
	if len(e.f.Servers()) != 1 {
		t.Errorf("servers: %+v", e.f.Servers())
	}
}

func TestServerErrors(t *testing.T) {
	e := newEnv(t, fake.Options{PageSize: 1}, testOpts)
	ctx := context.Background()
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.ServerError, Times: 2})
	if _, err := e.create(t, "a", "cx22", "nbg1", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.create(t, "b", "cx22", "nbg1", "web"); err != nil {
		t.Fatal(err)
	}
	// A 500 on the second page: that page is asked again, the list is whole.
	e.f.Inject(fake.Failure{Route: "GET /servers", Kind: fake.ServerError, Times: 1})
	before := e.f.Requests("GET /servers")
	got, err := e.c.List(ctx, labels("web"))
	if err != nil || len(got) != 2 {
		t.Fatalf("list: %v %v", got, err)
	}
	if n := e.f.Requests("GET /servers") - before; n != 3 {
		t.Errorf("list of 2 pages with one 500 took %d requests, want 3", n)
	}
	e.f.Inject(fake.Failure{Route: "DELETE /servers/{id}", Kind: fake.ServerError, Times: 1})
	if err := e.c.Destroy(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	e.f.Inject(fake.Failure{Route: "GET /servers/actions/{id}", Kind: fake.ServerError, Times: 1})
	if _, err := e.create(t, "c", "cx22", "nbg1", "web"); err != nil {
		t.Fatalf("create with a 500 while polling its action: %v", err)
	}
	e.f.Inject(fake.Failure{Route: "GET /servers/{id}", Kind: fake.ServerError, Times: 10})
	_, err = e.c.Get(ctx, got[1].ID)
	if !errors.Is(err, provider.ErrTemporary) || !strings.Contains(err.Error(), "after 5 calls") {
		t.Fatalf("get through 500s: %v", err)
	}
	if n := len(e.f.Servers()); n != 2 {
		t.Errorf("%d servers, want 2 (b, c)", n)
	}
}

func TestCapacity(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Unavailable, Type: "cx22", Times: 100})
	_, err := e.create(t, "a", "cx22", "fsn1", "web")
	if !errors.Is(err, provider.ErrCapacity) || !strings.Contains(err.Error(), "resource_unavailable") {
		t.Fatalf("err %v, want capacity", err)
	}
	if n := e.f.Requests("POST /servers"); n != 1 {
		t.Errorf("a capacity error was retried: %d creates", n)
	}
	// The next type has some.
	if _, err := e.create(t, "a", "cx32", "fsn1", "web"); err != nil {
		t.Fatal(err)
	}
	// Per location.
	e.f.Inject(fake.Failure{Kind: fake.Unavailable, Location: "hel1", Times: 100})
	if _, err := e.create(t, "b", "cx32", "hel1", "web"); !errors.Is(err, provider.ErrCapacity) {
		t.Fatalf("hel1: %v", err)
	}
	if _, err := e.create(t, "b", "cx32", "nbg1", "web"); err != nil {
		t.Fatal(err)
	}
	// A type Hetzner does not sell in a location now.
	if _, err := e.create(t, "c", "cpx31", "nbg1", "web"); !errors.Is(err, provider.ErrCapacity) {
		t.Fatalf("cpx31 in nbg1: %v", err)
	}
	// A type that does not exist is no capacity problem: final, plain.
	_, err = e.create(t, "d", "cx999", "fsn1", "web")
	if err == nil || errors.Is(err, provider.ErrCapacity) || errors.Is(err, provider.ErrTemporary) {
		t.Fatalf("unknown type: %v", err)
	}
	if n := len(e.f.Servers()); n != 2 {
		t.Errorf("%d servers, want 2", n)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	bad := newCloud(t, "wrong", e.f.URL(), testOpts)
	if _, err := bad.List(context.Background(), labels("web")); !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	if bad.Calls() != 1 {
		t.Errorf("a refused token was tried %d times", bad.Calls())
	}
	if _, err := New("", e.f.URL()); !errors.Is(err, provider.ErrAuth) {
		t.Errorf("empty token: %v", err)
	}
}

// A create whose answer never comes (the server is made): the client's
// timeout, a retry, the name taken, the server adopted. One server.
func TestCreateTimeoutAdopts(t *testing.T) {
	o := testOpts
	o.CallTimeout = 300 * time.Millisecond
	o.Policy = provider.Policy{Attempts: 30, Base: 20 * time.Millisecond, Max: 50 * time.Millisecond}
	e := newEnv(t, fake.Options{}, o)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Hang})
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.f.Servers(); len(got) != 1 || fmt.Sprint(got[0].ID) != s.ID || s.Status != provider.Running {
		t.Fatalf("server %+v; the fake holds %+v", s, got)
	}
	if n := e.f.Requests("POST /servers"); n != 2 {
		t.Errorf("%d creates, want 2", n)
	}
	// The same, with the new server out of lists for a while: the retry
	// finds the name taken and nothing listed, and tries again later.
	e.f.SetListDelay(400 * time.Millisecond)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Hang})
	if _, err := e.create(t, "b", "cx22", "fsn1", "web"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.f.Servers()); n != 2 {
		t.Fatalf("%d servers, want 2", n)
	}
	// A name taken by a server of someone else is not adopted.
	e.f.SetListDelay(0)
	_, err = e.c.Create(context.Background(), provider.CreateRequest{Name: "a", Type: "cx22", Image: fake.SystemImage, Labels: labels("other")})
	if err == nil || !strings.Contains(err.Error(), "without this pool's labels") {
		t.Fatalf("create over another pool's name: %v", err)
	}
}

// A server appearing late in lists: Get finds it, List does later.
func TestListLate(t *testing.T) {
	e := newEnv(t, fake.Options{ListDelay: 300 * time.Millisecond}, testOpts)
	ctx := context.Background()
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.c.List(ctx, labels("web"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].ID == s.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A server that never boots: its create action never ends; Create gives
// up after ActionTimeout and destroys it.
func TestNeverBoots(t *testing.T) {
	o := testOpts
	o.ActionTimeout = 300 * time.Millisecond
	e := newEnv(t, fake.Options{}, o)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.NeverBoot})
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err == nil || !strings.Contains(err.Error(), "destroyed") || s.ID == "" {
		t.Fatalf("create of a server that never boots: %+v, %v", s, err)
	}
	if got := e.f.Servers(); len(got) != 0 {
		t.Fatalf("left: %+v", got)
	}
	// The caller's own deadline ends the wait the same way.
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.NeverBoot})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	e.known["b"] = true
	_, err = e.c.Create(ctx, provider.CreateRequest{Name: "b", Type: "cx22", Image: fake.SystemImage, Labels: labels("web")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if got := e.f.Servers(); len(got) != 0 {
		t.Fatalf("left: %+v", got)
	}
}

// A boot that fails: the create action ends in error; the server goes.
func TestBootFails(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	e.mem.Fail = func(name string) error {
		if name == "bad" {
			return errors.New("disk full")
		}
		return nil
	}
	_, err := e.create(t, "bad", "cx22", "fsn1", "web")
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "destroyed") {
		t.Fatalf("err %v", err)
	}
	if got := e.f.Servers(); len(got) != 0 {
		t.Fatalf("left: %+v", got)
	}
}

func TestSnapshot(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	ctx := context.Background()
	b, err := e.create(t, "builder", "cx22", "fsn1", "image")
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.c.Snapshot(ctx, b.ID, "moat web 2026-12-08")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.Destroy(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	s, err := e.c.Create(ctx, provider.CreateRequest{Name: "n1", Type: "cx22", Image: img, Labels: labels("web")})
	e.known["n1"] = true
	if err != nil {
		t.Fatal(err)
	}
	if s.Image != img || e.mem.Machines()["n1"].Image != "snap-1-builder" {
		t.Fatalf("server %+v from image %s; machine %+v", s, img, e.mem.Machines()["n1"])
	}
	if err := e.c.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeleteImage(ctx, img); err != nil {
		t.Fatalf("deleting an image already gone: %v", err)
	}
	if len(e.f.Images()) != 0 {
		t.Errorf("images left: %v", e.f.Images())
	}
	if _, err := e.c.Snapshot(ctx, "99999", "x"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("snapshot of no server: %v", err)
	}
}

func TestClassify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		err  error
		want error
	}{
		{hcloud.Error{Code: hcloud.ErrorCodeNotFound}, provider.ErrNotFound},
		{hcloud.Error{Code: hcloud.ErrorCodeUnauthorized}, provider.ErrAuth},
		{hcloud.Error{Code: hcloud.ErrorCodeForbidden}, provider.ErrAuth},
		{hcloud.Error{Code: hcloud.ErrorCodeResourceUnavailable}, provider.ErrCapacity},
		{hcloud.Error{Code: hcloud.ErrorCodePlacementError}, provider.ErrCapacity},
		{hcloud.Error{Code: hcloud.ErrorCodeInvalidInput, Message: "unsupported location for server type"}, provider.ErrCapacity},
		{hcloud.Error{Code: hcloud.ErrorCodeServerError}, provider.ErrTemporary},
		{hcloud.Error{Code: hcloud.ErrorCodeServiceError}, provider.ErrTemporary},
		{hcloud.Error{Code: hcloud.ErrorCodeLocked}, provider.ErrTemporary},
		{hcloud.Error{Code: hcloud.ErrorCodeConflict}, provider.ErrTemporary},
		{fmt.Errorf("hcloud: %w %d", hcloud.ErrStatusCode, 502), provider.ErrTemporary},
		{fmt.Errorf("hcloud: %w %d", hcloud.ErrStatusCode, 404), provider.ErrNotFound},
		{fmt.Errorf("hcloud: %w %d", hcloud.ErrStatusCode, 400), nil},
		{hcloud.Error{Code: hcloud.ErrorCodeInvalidInput, Message: "name is invalid"}, nil},
		{hcloud.Error{Code: hcloud.ErrorCodeResourceLimitExceeded}, nil},
		{context.Canceled, nil},
	}
	for _, c := range cases {
		got := classify(c.err, now)
		for _, class := range []error{provider.ErrNotFound, provider.ErrAuth, provider.ErrCapacity, provider.ErrTemporary} {
			if errors.Is(got, class) != (class == c.want) {
				t.Errorf("%v: classified %v", c.err, got)
			}
		}
	}
	var rl *provider.RateLimited
	if !errors.As(classify(hcloud.Error{Code: hcloud.ErrorCodeRateLimitExceeded}, now), &rl) || rl.RetryAfter != time.Second {
		t.Errorf("429 without headers: %v", rl)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reset := func(d int64) string { return fmt.Sprint(now.Unix() + d) }
	cases := []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{"nothing", nil, time.Second},
		{"retry-after wins", map[string]string{"Retry-After": "7", "RateLimit-Reset": reset(3600)}, 7 * time.Second},
		{"bucket empty: one request's refill", map[string]string{"RateLimit-Limit": "3600", "RateLimit-Remaining": "0", "RateLimit-Reset": reset(3600)}, 1100 * time.Millisecond},
		{"small limit", map[string]string{"RateLimit-Limit": "60", "RateLimit-Remaining": "0", "RateLimit-Reset": reset(3600)}, 60*time.Second + 100*time.Millisecond},
		{"reset only", map[string]string{"RateLimit-Reset": reset(30)}, time.Second},
		{"reset past", map[string]string{"RateLimit-Limit": "3600", "RateLimit-Remaining": "0", "RateLimit-Reset": reset(-5)}, 0},
		{"reset absurd", map[string]string{"RateLimit-Reset": reset(1 << 40)}, time.Second},
		{"garbage", map[string]string{"Retry-After": "soon", "RateLimit-Reset": "x"}, time.Second},
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		if got := retryAfterHeaders(h, now); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// FuzzRetryAfter: whatever the headers, a wait between 0 and an hour.
func FuzzRetryAfter(f *testing.F) {
	f.Add("", "3600", "0", "1800003600")
	f.Add("5", "", "", "")
	f.Add("-1", "-5", "99999999999999999999", "1800000001")
	f.Add("", "1", "0", "1800000000")
	f.Fuzz(func(t *testing.T, ra, limit, remaining, reset string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("RateLimit-Limit", limit)
		h.Set("RateLimit-Remaining", remaining)
		h.Set("RateLimit-Reset", reset)
		d := retryAfterHeaders(h, time.Unix(1_800_000_000, 0))
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("wait %s", d)
		}
	})
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"moat web 2026-12-08":   "moat-web-2026-12-08",
		"":                      "image",
		"..x..":                 "x",
		strings.Repeat("a", 80): strings.Repeat("a", 63),
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCalls counts the API calls of a scale-up (one create, its action
// polled while the machine boots), a destroy and a listing of 120 servers,
// against Hetzner's 3,600 an hour. The boot takes 150 ms with polls from
// 10 ms: Hetzner's 10-20 s create with polls from 1 s, scaled by 1/100.
func TestCalls(t *testing.T) {
	o := testOpts
	e := newEnv(t, fake.Options{}, o)
	e.c.ActionPoll = 10 * time.Millisecond
	e.mem.BootDelay = 150 * time.Millisecond
	ctx := context.Background()
	n0 := e.c.Calls()
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err != nil {
		t.Fatal(err)
	}
	create := e.c.Calls() - n0
	n0 = e.c.Calls()
	if err := e.c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	destroy := e.c.Calls() - n0
	e.mem.BootDelay = 0
	for i := range 120 {
		if _, err := e.create(t, fmt.Sprintf("m%d", i), "cx22", "fsn1", "web"); err != nil {
			t.Fatal(err)
		}
	}
	n0 = e.c.Calls()
	all, err := e.c.List(ctx, labels("web"))
	if err != nil || len(all) != 120 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	list := e.c.Calls() - n0
	t.Logf("API calls: create (boot 15 s scaled) %d, destroy %d, list of 120 servers %d", create, destroy, list)
	// 1 POST, the create action looked at after 10, 20, 40, 50, 50 ms
	// (and once more if a wait ran late), 1 GET of the server.
	if create < 3 || create > 9 || destroy > 3 || list != 3 {
		t.Errorf("calls: create %d (want 3-9), destroy %d (want ≤ 3), list %d (want 3 pages of 50)", create, destroy, list)
	}
}

// TestCreateLostEverywhere: the create's answer lost, then the lookup of
// the name answered 500 and the adopted server's first look 429: still
// one server, adopted.
func TestCreateLostEverywhere(t *testing.T) {
	o := testOpts
	o.CallTimeout = 300 * time.Millisecond
	e := newEnv(t, fake.Options{}, o)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Hang})
	e.f.Inject(fake.Failure{Route: "GET /servers", Kind: fake.ServerError})
	e.f.Inject(fake.Failure{Route: "GET /servers/{id}", Kind: fake.RateLimit})
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.f.Servers(); len(got) != 1 || fmt.Sprint(got[0].ID) != s.ID {
		t.Fatalf("server %+v; the fake holds %+v", s, got)
	}
	if n := e.f.Requests("GET /servers"); n != 2 {
		t.Errorf("the name was looked up %d times, want 2 (one 500)", n)
	}
}

func TestStatus(t *testing.T) {
	for in, want := range map[hcloud.ServerStatus]provider.Status{
		hcloud.ServerStatusInitializing: provider.Pending,
		hcloud.ServerStatusStarting:     provider.Pending,
		hcloud.ServerStatusRunning:      provider.Running,
		hcloud.ServerStatusOff:          provider.Off,
		hcloud.ServerStatusStopping:     provider.Off,
		hcloud.ServerStatusDeleting:     provider.Deleting,
		hcloud.ServerStatusUnknown:      provider.Pending,
	} {
		if got := status(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// A server whose OS never comes up (Silent): the API says it runs; only
// a dial would tell (the pool manager's boot deadline). Destroyed, gone.
func TestSilentServer(t *testing.T) {
	e := newEnv(t, fake.Options{}, testOpts)
	e.f.Inject(fake.Failure{Route: "POST /servers", Kind: fake.Silent})
	s, err := e.create(t, "a", "cx22", "fsn1", "web")
	if err != nil || s.Status != provider.Running || !strings.HasPrefix(s.IPv4, "192.0.2.") {
		t.Fatalf("%+v, %v", s, err)
	}
	if len(e.mem.Machines()) != 0 {
		t.Errorf("machines: %v", e.mem.Machines())
	}
	if err := e.c.Destroy(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.f.Servers(); len(got) != 0 {
		t.Fatalf("left: %+v", got)
	}
}
