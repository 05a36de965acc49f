// Package digitalocean is moat's DigitalOcean provider: droplets created,
// listed by tag and destroyed, sizes with their prices, snapshots made,
// all through the official client (github.com/digitalocean/godo), with its
// errors mapped onto provider's classes. godo's own retries are off: every
// call goes through Cloud.Policy once, so an error a Cloud method returns
// is final for that call.
package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/digitalocean/godo"

	"github.com/moatcloud/moat/internal/provider"
)

// Kind is the provider's name in a pool's configuration.
const Kind = "digitalocean"

// perPage is what List asks for per page: DigitalOcean's maximum.
const perPage = 200

// maxPages bounds a listing, against an API whose "next" never ends.
const maxPages = 1000

// Cloud is one DigitalOcean account (one API token).
type Cloud struct {
	// Policy bounds the calls made for one operation (rate limits wait
	// Retry-After, server errors back off with jitter).
	Policy provider.Policy
	// CallTimeout bounds one HTTP request: a request unanswered by then
	// counts as a temporary failure (and a create is then looked up by
	// name before it is sent again).
	CallTimeout time.Duration
	// ActionPoll is how often an action (power off, snapshot) is polled;
	// ActionTimeout is how long one may run.
	ActionPoll    time.Duration
	ActionTimeout time.Duration

	client *godo.Client
	calls  atomic.Int64
	now    func() time.Time
}

var (
	_ provider.Provider = (*Cloud)(nil)
	_ provider.Imager   = (*Cloud)(nil)
)

// New opens the account behind token. endpoint "" is the real API
// (https://api.digitalocean.com/); anything else is a base URL such as a
// fake's.
func New(token, endpoint string) (*Cloud, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New("digitalocean: no API token")
	}
	base := endpoint
	if base == "" {
		base = "https://api.digitalocean.com/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	c := &Cloud{
		Policy:        provider.DefaultPolicy,
		CallTimeout:   60 * time.Second,
		ActionPoll:    3 * time.Second,
		ActionTimeout: 30 * time.Minute,
		now:           time.Now,
	}
	hc := &http.Client{Transport: &transport{
		base:  http.DefaultTransport,
		token: token,
		limit: sharedLimiter(base, token),
		calls: &c.calls,
	}}
	client, err := godo.New(hc, godo.SetBaseURL(base), godo.SetUserAgent("moat"))
	if err != nil {
		return nil, fmt.Errorf("digitalocean: endpoint %q: %w", endpoint, err)
	}
	if client.BaseURL.Scheme != "https" && client.BaseURL.Scheme != "http" || client.BaseURL.Host == "" {
		return nil, fmt.Errorf("digitalocean: endpoint %q is not an http(s) URL", endpoint)
	}
	c.client = client
	return c, nil
}

// Kind is "digitalocean".
func (c *Cloud) Kind() string { return Kind }

// Calls counts the HTTP requests this Cloud has sent (retries included):
// what the pool manager reports per scale-up and per idle hour against
// DigitalOcean's 250 a minute.
func (c *Cloud) Calls() int64 { return c.calls.Load() }

// do runs one API call under the policy, each attempt with CallTimeout,
// its error classified.
func (c *Cloud) do(ctx context.Context, what string, f func(context.Context) error) error {
	return c.Policy.Do(ctx, "digitalocean: "+what, func(ctx context.Context) error {
		if c.CallTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.CallTimeout)
			defer cancel()
		}
		return classify(f(ctx), c.now())
	})
}

// Types lists the sizes the account can create (those DigitalOcean says
// are available, in the regions it lists), with their prices in USD.
// DigitalOcean bills droplets per second (60 s at least) up to the
// monthly price, so no size is BilledHourly.
func (c *Cloud) Types(ctx context.Context) ([]provider.ServerType, error) {
	var out []provider.ServerType
	seen := map[string]bool{}
	err := c.pages(ctx, "list sizes", func(ctx context.Context, opt *godo.ListOptions) (*godo.Response, error) {
		sizes, resp, err := c.client.Sizes.List(ctx, opt)
		for _, s := range sizes {
			if !s.Available || s.Slug == "" || seen[s.Slug] || len(s.Regions) == 0 {
				continue
			}
			seen[s.Slug] = true
			out = append(out, provider.ServerType{
				Name:        s.Slug,
				CPUMilli:    int64(s.Vcpus) * 1000,
				MemoryBytes: int64(s.Memory) << 20,
				DiskBytes:   int64(s.Disk) << 30,
				Regions:     slices.Clone(s.Regions),
				Hourly:      s.PriceHourly,
				Monthly:     s.PriceMonthly,
				Currency:    "USD",
			})
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pages calls list for page 1, 2, ... until DigitalOcean's links say the
// last page was read. Each page is one call under the policy.
func (c *Cloud) pages(ctx context.Context, what string, list func(context.Context, *godo.ListOptions) (*godo.Response, error)) error {
	opt := &godo.ListOptions{Page: 1, PerPage: perPage}
	for ; opt.Page <= maxPages; opt.Page++ {
		var resp *godo.Response
		err := c.do(ctx, fmt.Sprintf("%s (page %d)", what, opt.Page), func(ctx context.Context) error {
			var err error
			resp, err = list(ctx, opt)
			return err
		})
		if err != nil {
			return err
		}
		if resp == nil || resp.Links == nil || resp.Links.IsLastPage() {
			return nil
		}
	}
	return fmt.Errorf("digitalocean: %s: more than %d pages", what, maxPages)
}

// Create asks for a droplet: the image is a slug ("debian-12-x64") or a
// snapshot's numeric id; no SSH key is given (the image holds the
// operator's), the labels become tags. A create whose answer was lost (a
// server error, a timeout) is not simply sent again: the next attempt
// first looks the name up and adopts a droplet of that name carrying all
// the labels, so a retry never makes a second droplet.
func (c *Cloud) Create(ctx context.Context, req provider.CreateRequest) (provider.Server, error) {
	if err := checkName(req.Name); err != nil {
		return provider.Server{}, err
	}
	tags, err := Tags(req.Labels)
	if err != nil {
		return provider.Server{}, err
	}
	image := godo.DropletCreateImage{Slug: req.Image}
	if id, err := strconv.Atoi(req.Image); err == nil {
		image = godo.DropletCreateImage{ID: id}
	}
	if req.Image == "" || req.Type == "" || req.Region == "" {
		return provider.Server{}, fmt.Errorf("digitalocean: create %s: image, size and region are required", req.Name)
	}
	cr := &godo.DropletCreateRequest{
		Name:     req.Name,
		Region:   req.Region,
		Size:     req.Type,
		Image:    image,
		UserData: req.UserData,
		Tags:     tags,
	}
	var out provider.Server
	lost := false
	err = c.do(ctx, fmt.Sprintf("create droplet %s (%s in %s)", req.Name, req.Type, req.Region), func(ctx context.Context) error {
		if lost {
			s, found, err := c.findCreated(ctx, req.Name, req.Labels)
			if err != nil {
				return err
			}
			if found {
				out = s
				return nil
			}
		}
		d, _, err := c.client.Droplets.Create(ctx, cr)
		if err != nil {
			if errors.Is(classify(err, c.now()), provider.ErrTemporary) {
				lost = true
			}
			return err
		}
		out = server(d)
		return nil
	})
	if err != nil {
		return provider.Server{}, err
	}
	return out, nil
}

// findCreated looks for a droplet a lost create may have made: the name
// and every label. The newest wins if there are several (the others are
// tagged, so the orphan reconciler sees them).
func (c *Cloud) findCreated(ctx context.Context, name string, labels map[string]string) (provider.Server, bool, error) {
	var best provider.Server
	found := false
	opt := &godo.ListOptions{Page: 1, PerPage: perPage}
	for ; opt.Page <= maxPages; opt.Page++ {
		ds, resp, err := c.client.Droplets.ListByName(ctx, name, opt)
		if err != nil {
			return provider.Server{}, false, err
		}
		for i := range ds {
			s := server(&ds[i])
			if s.Name == name && hasLabels(s.Labels, labels) && (!found || s.Created.After(best.Created)) {
				best, found = s, true
			}
		}
		if resp == nil || resp.Links == nil || resp.Links.IsLastPage() {
			break
		}
	}
	return best, found, nil
}

// Get reports one droplet; ErrNotFound once it is gone.
func (c *Cloud) Get(ctx context.Context, id string) (provider.Server, error) {
	n, err := dropletID(id)
	if err != nil {
		return provider.Server{}, err
	}
	var out provider.Server
	err = c.do(ctx, "get droplet "+id, func(ctx context.Context) error {
		d, _, err := c.client.Droplets.Get(ctx, n)
		if err != nil {
			return err
		}
		out = server(d)
		return nil
	})
	return out, err
}

// List returns every droplet carrying all the labels: DigitalOcean lists
// by one tag (the cluster's when asked for), the other labels are checked
// here. No labels: every droplet of the account.
func (c *Cloud) List(ctx context.Context, labels map[string]string) ([]provider.Server, error) {
	tags, err := Tags(labels)
	if err != nil {
		return nil, err
	}
	tag := ""
	if v, ok := labels[provider.LabelCluster]; ok {
		tag = provider.LabelCluster + ":" + v
	} else if len(tags) > 0 {
		tag = tags[0]
	}
	var out []provider.Server
	seen := map[string]bool{}
	err = c.pages(ctx, "list droplets", func(ctx context.Context, opt *godo.ListOptions) (*godo.Response, error) {
		var ds []godo.Droplet
		var resp *godo.Response
		var err error
		if tag != "" {
			ds, resp, err = c.client.Droplets.ListByTag(ctx, tag, opt)
		} else {
			ds, resp, err = c.client.Droplets.List(ctx, opt)
		}
		for i := range ds {
			s := server(&ds[i])
			if !seen[s.ID] && hasLabels(s.Labels, labels) {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Destroy deletes a droplet; one already gone is not an error.
func (c *Cloud) Destroy(ctx context.Context, id string) error {
	n, err := dropletID(id)
	if err != nil {
		return nil // no droplet has this id: nothing to delete
	}
	err = c.do(ctx, "delete droplet "+id, func(ctx context.Context) error {
		_, err := c.client.Droplets.Delete(ctx, n)
		return err
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return err
}

func dropletID(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("digitalocean: %q is not a droplet id: %w", id, provider.ErrNotFound)
	}
	return n, nil
}

// hostname: DigitalOcean's droplet names (letters, digits, dots, dashes).
var hostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$`)

func checkName(name string) error {
	if !hostname.MatchString(name) {
		return fmt.Errorf("digitalocean: droplet name %q: only letters, digits, dots and dashes, at most 255", name)
	}
	return nil
}

// Label keys and values as DigitalOcean tags: a tag is "key:value", in
// DigitalOcean's charset (letters, digits, colons, dashes, underscores;
// 255 at most). A key holds no colon (the first one splits the tag).
var (
	tagKey   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	tagValue = regexp.MustCompile(`^[A-Za-z0-9_:-]*$`)
)

// Tags encodes labels as DigitalOcean tags, sorted; a label that cannot
// be a tag is an error naming it.
func Tags(labels map[string]string) ([]string, error) {
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		t := k + ":" + v
		if !tagKey.MatchString(k) || !tagValue.MatchString(v) || len(t) > 255 {
			return nil, fmt.Errorf("digitalocean: label %s=%s cannot be a tag (letters, digits, '-', '_'; ':' in the value; 255 at most)", k, v)
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// Labels decodes tags written by Tags; tags without a colon are not labels.
func Labels(tags []string) map[string]string {
	labels := map[string]string{}
	for _, t := range tags {
		if k, v, ok := strings.Cut(t, ":"); ok && k != "" {
			labels[k] = v
		}
	}
	return labels
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// server maps a droplet onto provider.Server.
func server(d *godo.Droplet) provider.Server {
	s := provider.Server{
		ID:     strconv.Itoa(d.ID),
		Name:   d.Name,
		Type:   d.SizeSlug,
		Labels: Labels(d.Tags),
		Status: status(d.Status),
	}
	if s.Type == "" && d.Size != nil {
		s.Type = d.Size.Slug
	}
	if d.Region != nil {
		s.Region = d.Region.Slug
	}
	if d.Image != nil {
		s.Image = d.Image.Slug
		if s.Image == "" {
			s.Image = strconv.Itoa(d.Image.ID)
		}
	}
	if ip, err := d.PublicIPv4(); err == nil {
		s.IPv4 = ip
	}
	if t, err := time.Parse(time.RFC3339, d.Created); err == nil {
		s.Created = t
	}
	return s
}

// status maps a droplet's status ("new", "active", "off", "archive").
func status(s string) provider.Status {
	switch s {
	case "active":
		return provider.Running
	case "off":
		return provider.Off
	case "archive":
		return provider.Deleting
	}
	return provider.Pending
}
