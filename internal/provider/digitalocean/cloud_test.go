package digitalocean_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/digitalocean/fake"
)

var labels = map[string]string{provider.LabelCluster: "prod", provider.LabelPool: "web"}

func setup(t *testing.T) (*digitalocean.Cloud, *fake.Fake, *provider.MemoryMachines) {
	t.Helper()
	m := &provider.MemoryMachines{}
	f, err := fake.New(m, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = provider.Policy{Attempts: 5, Base: time.Millisecond, Max: 3 * time.Second}
	c.ActionPoll = 5 * time.Millisecond
	c.CallTimeout = 10 * time.Second
	return c, f, m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func req(name string) provider.CreateRequest {
	return provider.CreateRequest{Name: name, Type: "s-1vcpu-1gb", Region: "fra1", Image: "debian-12-x64",
		UserData: "#cloud-config\nhostname: " + name + "\n", Labels: labels}
}

// only checks that the fake holds exactly the droplets ids (the test
// knows every one), and, once their destroys have run, machines for no
// others.
func only(t *testing.T, f *fake.Fake, m *provider.MemoryMachines, ids ...string) {
	t.Helper()
	var got []string
	for _, d := range f.Servers() {
		got = append(got, strconv.Itoa(d.ID))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Fatalf("the fake holds droplets %v, the test knows %v", got, want)
	}
	waitFor(t, "machines only for the droplets held", func() bool {
		held := map[string]bool{}
		for _, d := range f.Servers() {
			held[d.Name] = true
			held[fmt.Sprintf("%s-%d", d.Name, d.ID)] = true
			if _, ok := m.Machines()[d.Name]; d.Status == "active" && !ok {
				return false
			}
		}
		for n := range m.Machines() {
			if !held[n] {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func running(t *testing.T, c *digitalocean.Cloud, id string) provider.Server {
	t.Helper()
	var s provider.Server
	waitFor(t, "droplet "+id+" running", func() bool {
		var err error
		s, err = c.Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.Status == provider.Running
	})
	return s
}

func TestLifecycle(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	types, err := c.Types(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ty := range types {
		names = append(names, ty.Name)
	}
	if want := []string{"s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"}; !slices.Equal(names, want) {
		t.Fatalf("types %v, want %v (c-2 is unavailable)", names, want)
	}
	if ty := types[0]; ty.CPUMilli != 1000 || ty.MemoryBytes != 1<<30 || ty.DiskBytes != 25<<30 || ty.Hourly != 0.00893 ||
		ty.Monthly != 6 || ty.Currency != "USD" || ty.BilledHourly || !slices.Equal(ty.Regions, []string{"ams3", "fra1", "nyc3"}) {
		t.Fatalf("type %+v", ty)
	}

	s, err := c.Create(ctx, req("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != provider.Pending || s.Name != "web-1" || s.Type != "s-1vcpu-1gb" || s.Region != "fra1" ||
		s.Image != "debian-12-x64" || s.Labels[provider.LabelPool] != "web" || s.Created.IsZero() {
		t.Fatalf("created %+v", s)
	}
	s = running(t, c, s.ID)
	if mm := m.Machines()["web-1"]; s.IPv4 == "" || mm.IPv4 != s.IPv4 || mm.UserData != req("web-1").UserData || mm.Image != "debian-12" {
		t.Fatalf("running %+v, machines %+v", s, m.Machines())
	}
	d := f.Servers()[0]
	if want := []string{"moat-cluster:prod", "moat-pool:web"}; !slices.Equal(d.Tags, want) {
		t.Fatalf("tags %v, want %v", d.Tags, want)
	}
	for _, tc := range []struct {
		labels map[string]string
		n      int
	}{
		{labels, 1},
		{map[string]string{provider.LabelCluster: "prod"}, 1},
		{map[string]string{provider.LabelPool: "web"}, 1},
		{map[string]string{provider.LabelCluster: "prod", provider.LabelPool: "db"}, 0},
		{map[string]string{provider.LabelCluster: "other"}, 0},
		{nil, 1},
	} {
		got, err := c.List(ctx, tc.labels)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.n || tc.n == 1 && got[0].ID != s.ID {
			t.Fatalf("List(%v) = %+v, want %d", tc.labels, got, tc.n)
		}
	}
	if _, err := c.List(ctx, map[string]string{"moat-pool": "a b"}); err == nil {
		t.Fatal("a label that cannot be a tag was listed")
	}
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("get after destroy: %v", err)
	}
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatalf("destroying a droplet already gone: %v", err)
	}
	only(t, f, m)
	waitFor(t, "machine destroyed", func() bool { return len(m.Machines()) == 0 })
	if c.Calls() != int64(f.Requests("")) {
		t.Fatalf("the cloud counted %d calls, the fake answered %d", c.Calls(), f.Requests(""))
	}
}

func TestPagination(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.SetPageSize(2)
	var ids []string
	for _, n := range []string{"p-1", "p-2", "p-3", "p-4", "p-5"} {
		s, err := c.Create(ctx, req(n))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	r := req("untagged")
	r.Labels = nil
	u, err := c.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	before := f.Requests("GET /v2/droplets")
	got, err := c.List(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || f.Requests("GET /v2/droplets")-before != 3 {
		t.Fatalf("listed %d droplets in %d pages, want 5 in 3", len(got), f.Requests("GET /v2/droplets")-before)
	}
	all, err := c.List(ctx, nil)
	if err != nil || len(all) != 6 {
		t.Fatalf("listed %d of 6 (%v)", len(all), err)
	}
	types, err := c.Types(ctx)
	if err != nil || len(types) != 5 {
		t.Fatalf("types over pages of 2: %d (%v)", len(types), err)
	}
	only(t, f, m, append(ids, u.ID)...)
	for _, id := range append(ids, u.ID) {
		if err := c.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	only(t, f, m)
}

func TestRateLimited(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.RateLimit, Delay: time.Second})
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.RateLimit})
	start := time.Now()
	s, err := c.Create(ctx, req("rl-1"))
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %s, before the Retry-After of 1s", waited)
	}
	if n := f.Requests("POST /v2/droplets"); n != 3 {
		t.Fatalf("%d creates sent, want 3 (two rate limited)", n)
	}
	// A 429 is no lost answer: no lookup by name was needed.
	if n := f.Requests("GET /v2/droplets"); n != 0 {
		t.Fatalf("%d lookups after a 429", n)
	}
	only(t, f, m, s.ID)

	c.Policy.Attempts = 2
	f.Inject(fake.Failure{Route: "GET /v2/droplets/{id}", Kind: fake.RateLimit, Times: 2})
	_, err = c.Get(ctx, s.ID)
	var rl *provider.RateLimited
	if !errors.As(err, &rl) {
		t.Fatalf("get rate limited twice with 2 attempts: %v", err)
	}
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	only(t, f, m)
}

func TestServerErrors(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.ServerError, Times: 2})
	s, err := c.Create(ctx, req("e-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Each 500 could have hidden a droplet: the name was looked up before each resend.
	if p, g := f.Requests("POST /v2/droplets"), f.Requests("GET /v2/droplets"); p != 3 || g != 2 {
		t.Fatalf("%d creates and %d lookups, want 3 and 2", p, g)
	}
	f.Inject(fake.Failure{Route: "GET /v2/droplets/{id}", Kind: fake.ServerError, Times: 2})
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Fatalf("get after two 503s: %v", err)
	}
	f.Inject(fake.Failure{Route: "GET /v2/droplets", Kind: fake.ServerError, Times: 5})
	_, err = c.List(ctx, labels)
	if !errors.Is(err, provider.ErrTemporary) || !strings.Contains(err.Error(), "after 5 calls") {
		t.Fatalf("list failing for ever: %v", err)
	}
	if got, err := c.List(ctx, labels); err != nil || len(got) != 1 {
		t.Fatalf("list once the errors stop: %+v %v", got, err)
	}
	only(t, f, m, s.ID)
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	only(t, f, m)
}

func TestCapacity(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Unavailable, Type: "s-1vcpu-1gb", Region: "fra1", Times: 10})
	_, err := c.Create(ctx, req("cap-1"))
	if !errors.Is(err, provider.ErrCapacity) {
		t.Fatalf("create without capacity: %v", err)
	}
	if n := f.Requests("POST /v2/droplets"); n != 1 {
		t.Fatalf("a capacity error was retried: %d creates", n)
	}
	// The pool manager's next choice: another region.
	r := req("cap-1")
	r.Region = "ams3"
	s, err := c.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// A size DigitalOcean lists as unavailable, and one not sold in the region.
	r = req("cap-2")
	r.Type = "c-2"
	r.Region = "nyc3"
	if _, err := c.Create(ctx, r); !errors.Is(err, provider.ErrCapacity) {
		t.Fatalf("unavailable size: %v", err)
	}
	r.Type, r.Region = "s-4vcpu-8gb", "fra1"
	if _, err := c.Create(ctx, r); !errors.Is(err, provider.ErrCapacity) {
		t.Fatalf("size not in region: %v", err)
	}
	// Refusals that no other place changes are neither capacity nor temporary.
	r.Type, r.Region, r.Image = "s-1vcpu-1gb", "ams3", "ubuntu-99"
	if _, err := c.Create(ctx, r); err == nil || errors.Is(err, provider.ErrCapacity) || errors.Is(err, provider.ErrTemporary) {
		t.Fatalf("bad image: %v", err)
	}
	only(t, f, m, s.ID)
	if err := c.Destroy(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	only(t, f, m)
}

func TestAuth(t *testing.T) {
	_, f, m := setup(t)
	ctx := ctxT(t)
	bad, err := digitalocean.New("dop_v1_wrong", f.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Types(ctx); !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	if bad.Calls() != 1 {
		t.Fatalf("an auth error was retried: %d calls", bad.Calls())
	}
	if _, err := digitalocean.New(" ", f.URL()); err == nil {
		t.Fatal("no token accepted")
	}
	if _, err := digitalocean.New("x", "ftp://example.com"); err == nil {
		t.Fatal("an ftp endpoint accepted")
	}
	only(t, f, m)
}

// A create whose answer never comes (the droplet is made, the client times
// out): the retry finds the droplet by name and adopts it, nothing leaks.
func TestCreateTimeout(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	c.CallTimeout = 300 * time.Millisecond
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Hang})
	s, err := c.Create(ctx, req("hang-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets"); n != 1 {
		t.Fatalf("%d creates sent, want 1 (the second attempt adopts)", n)
	}
	only(t, f, m, s.ID)

	// The connection dropped with no answer (a proxy's timeout): the same.
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Drop})
	s2, err := c.Create(ctx, req("drop-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets"); n != 2 {
		t.Fatalf("%d creates sent, want 2 (the dropped one adopted)", n)
	}
	only(t, f, m, s.ID, s2.ID)
	if err := c.Destroy(ctx, s2.ID); err != nil {
		t.Fatal(err)
	}

	// With no retry left the create fails; the droplet it made carries the
	// name and labels, so whoever listed it (the pool manager) destroys it.
	c.Policy.Attempts = 1
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Hang})
	_, err = c.Create(ctx, req("hang-2"))
	if !errors.Is(err, provider.ErrTemporary) {
		t.Fatalf("create timing out: %v", err)
	}
	got, err := c.List(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	var lost string
	for _, g := range got {
		if g.Name == "hang-2" {
			lost = g.ID
		}
	}
	if lost == "" {
		t.Fatalf("the droplet of the timed-out create is not listed: %+v", got)
	}
	only(t, f, m, s.ID, lost)
	for _, id := range []string{s.ID, lost} {
		if err := c.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	only(t, f, m)
}

// A droplet listed late: Create returned it, Get sees it, List only later.
// And the case adoption cannot cover: a lost create answer while the
// droplet is not listed yet makes a second droplet of the same name; both
// carry the labels, so the orphan reconciler (which knows ids) removes the
// one nobody recorded.
func TestListedLate(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.SetListDelay(500 * time.Millisecond)
	s, err := c.Create(ctx, req("late-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.List(ctx, labels)
	if err != nil || len(got) != 0 {
		t.Fatalf("listed at once: %+v %v", got, err)
	}
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "late droplet listed", func() bool {
		got, err := c.List(ctx, labels)
		return err == nil && len(got) == 1 && got[0].ID == s.ID
	})

	c.CallTimeout = 300 * time.Millisecond
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.Hang})
	s2, err := c.Create(ctx, req("late-2"))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets"); n != 3 {
		t.Fatalf("%d creates, want 3", n)
	}
	var twin string
	waitFor(t, "the twin listed", func() bool {
		got, err := c.List(ctx, labels)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.Name == "late-2" && g.ID != s2.ID {
				twin = g.ID
			}
		}
		return twin != ""
	})
	// Both run: DigitalOcean lets names repeat (the fake's machine for the
	// second is named after its id too).
	running(t, c, twin)
	_, a := m.Machines()["late-2-"+twin]
	_, b := m.Machines()["late-2-"+s2.ID]
	if _, first := m.Machines()["late-2"]; !first || a == b {
		t.Fatalf("not one machine for each droplet named late-2: %v", m.Machines())
	}
	only(t, f, m, s.ID, s2.ID, twin)
	for _, id := range []string{s.ID, s2.ID, twin} {
		if err := c.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	only(t, f, m)
}

// A droplet that never boots stays Pending (its neighbour, created after
// it, runs) and is destroyed like any other.
func TestNeverBoots(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.NeverBoot})
	stuck, err := c.Create(ctx, req("stuck-1"))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Create(ctx, req("ok-1"))
	if err != nil {
		t.Fatal(err)
	}
	running(t, c, ok.ID)
	s, err := c.Get(ctx, stuck.ID)
	if err != nil || s.Status != provider.Pending || s.IPv4 != "" {
		t.Fatalf("never-booting droplet: %+v %v", s, err)
	}
	if _, ok := m.Machines()["stuck-1"]; ok {
		t.Fatal("a machine stands for the droplet that never booted")
	}
	only(t, f, m, stuck.ID, ok.ID)
	for _, id := range []string{stuck.ID, ok.ID} {
		if err := c.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	only(t, f, m)
}

func TestSnapshot(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	b, err := c.Create(ctx, req("builder"))
	if err != nil {
		t.Fatal(err)
	}
	running(t, c, b.ID)
	f.Inject(fake.Failure{Route: "POST /v2/droplets/{id}/actions", Kind: fake.ServerError}) // the power_off
	f.Inject(fake.Failure{Route: "GET /v2/actions/{id}", Kind: fake.ServerError})
	img, err := c.Snapshot(ctx, b.ID, "moat-web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Images(); len(got) != 1 || strconv.Itoa(got[0]) != img {
		t.Fatalf("images %v, want [%s]", got, img)
	}
	s, err := c.Get(ctx, b.ID)
	if err != nil || s.Status != provider.Off {
		t.Fatalf("builder after snapshot: %+v %v", s, err)
	}
	// Snapshotting an off droplet sends no power_off.
	f.Inject(fake.Failure{Route: "POST /v2/droplets/{id}/actions", Kind: fake.ServerError}) // the snapshot action: lost, looked for, sent again
	before := f.Requests("POST /v2/droplets/{id}/actions")
	img2, err := c.Snapshot(ctx, b.ID, "moat-web-2")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets/{id}/actions") - before; n != 2 {
		t.Fatalf("%d actions sent for a snapshot of an off droplet, want 2 (one failed)", n)
	}
	if len(f.Images()) != 2 {
		t.Fatalf("images %v, want 2", f.Images())
	}
	r := req("from-image")
	r.Image = img
	n, err := c.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	running(t, c, n.ID)
	if x := m.Machines()["from-image"]; !strings.HasSuffix(x.Image, "-builder") {
		t.Fatalf("machine from image %s: %+v", img, x)
	}
	for _, id := range []string{img, img2} {
		if err := c.DeleteImage(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteImage(ctx, id); err != nil {
			t.Fatalf("deleting an image already gone: %v", err)
		}
	}
	if len(f.Images()) != 0 {
		t.Fatalf("images left: %v", f.Images())
	}
	only(t, f, m, b.ID, n.ID)
	for _, id := range []string{b.ID, n.ID} {
		if err := c.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	only(t, f, m)
}

// Both actions' answers lost (the actions were made): the power_off sent
// again is refused (a pending event) and the droplet waited on until off;
// the snapshot is found among the droplet's actions, not made twice.
func TestSnapshotLostAnswers(t *testing.T) {
	m := &provider.MemoryMachines{}
	f, err := fake.New(m, fake.Options{ActionDelay: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = provider.Policy{Attempts: 5, Base: time.Millisecond, Max: time.Second}
	c.ActionPoll = 5 * time.Millisecond
	ctx := ctxT(t)
	b, err := c.Create(ctx, req("builder"))
	if err != nil {
		t.Fatal(err)
	}
	running(t, c, b.ID)
	c.CallTimeout = 150 * time.Millisecond
	// The power_off's answer lost: sent again, refused (a pending event), waited on.
	f.Inject(fake.Failure{Route: "POST /v2/droplets/{id}/actions", Kind: fake.Hang})
	img, err := c.Snapshot(ctx, b.ID, "moat-a")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets/{id}/actions"); n != 3 {
		t.Fatalf("%d actions sent, want 3 (power_off twice, snapshot once)", n)
	}
	// The snapshot's answer lost: found among the droplet's actions.
	f.Inject(fake.Failure{Route: "POST /v2/droplets/{id}/actions", Kind: fake.Hang})
	img2, err := c.Snapshot(ctx, b.ID, "moat-b")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("POST /v2/droplets/{id}/actions"); n != 4 {
		t.Fatalf("%d actions sent, want 4 (the lost snapshot not sent again)", n)
	}
	if got := f.Images(); len(got) != 2 || strconv.Itoa(got[0]) != img || strconv.Itoa(got[1]) != img2 {
		t.Fatalf("images %v, want %s and %s", got, img, img2)
	}
	for _, i := range []string{img, img2} {
		if err := c.DeleteImage(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	c.CallTimeout = 10 * time.Second
	if err := c.Destroy(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	only(t, f, m)
}

// Creates from many goroutines (the pool manager's scale-up), listed
// while they happen; then destroyed the same way.
func TestConcurrent(t *testing.T) {
	c, f, m := setup(t)
	ctx := ctxT(t)
	const n = 12
	ids := make([]string, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s, err := c.Create(ctx, req(fmt.Sprintf("c-%d", i)))
			ids[i] = s.ID
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.List(ctx, labels)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.List(ctx, labels)
	if err != nil || len(got) != n {
		t.Fatalf("listed %d of %d (%v)", len(got), n, err)
	}
	only(t, f, m, ids...)
	derrs := make([]error, n)
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); derrs[i] = c.Destroy(ctx, id) }()
	}
	wg.Wait()
	if err := errors.Join(derrs...); err != nil {
		t.Fatal(err)
	}
	only(t, f, m)
	if c.Calls() != int64(f.Requests("")) {
		t.Fatalf("counted %d calls, the fake answered %d", c.Calls(), f.Requests(""))
	}
}

// The hourly budget spent (RateLimit-Remaining: 0, perhaps by another
// client of the token): no request is sent before RateLimit-Reset.
func TestBudgetSpent(t *testing.T) {
	f, err := fake.New(&provider.MemoryMachines{}, fake.Options{PerHour: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for range 3 {
		if _, err := c.Types(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Types(short); err == nil || !strings.Contains(err.Error(), "request budget") {
		t.Fatalf("a request past the spent budget: %v", err)
	}
	if n := f.Requests(""); n != 3 {
		t.Fatalf("%d requests reached the API, want 3", n)
	}
}

// The fake's own budget: past the per-minute limit it answers 429 with
// Retry-After and DigitalOcean's headers.
func TestFakeRateLimit(t *testing.T) {
	f, err := fake.New(&provider.MemoryMachines{}, fake.Options{PerMinute: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last *http.Response
	for range 4 {
		r, _ := http.NewRequest("GET", f.URL()+"v2/sizes", nil)
		r.Header.Set("Authorization", "Bearer "+f.Token())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" ||
		last.Header.Get("RateLimit-Limit") != "5000" || last.Header.Get("RateLimit-Remaining") != "4997" {
		t.Fatalf("4th request: %d %v", last.StatusCode, last.Header)
	}
	if d := digitalocean.RetryAfter(last.Header, time.Now()); d < time.Second || d > time.Minute {
		t.Fatalf("retry after %s", d)
	}
}
