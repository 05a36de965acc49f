// Package provider is what moat asks of a cloud: the server types it
// sells, and servers created, listed by label and destroyed. Each cloud
// (provider/local, provider/digitalocean, provider/hetzner) implements
// Provider through its official client and maps that client's errors onto
// the classes here, so the pool manager and the autoscaler decide the same
// way whatever the cloud: retry after a rate limit or a server error, try
// the next server type or region on a capacity error, give up otherwise.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Labels every server moat creates carries: the orphan reconciler lists
// the cloud's servers by LabelCluster and never touches one without it.
const (
	LabelCluster = "moat-cluster"
	LabelPool    = "moat-pool"
)

// Status is where a server is in its life, as the cloud reports it.
type Status string

const (
	Pending  Status = "pending"  // accepted, not running yet
	Running  Status = "running"  // powered on (booted or booting)
	Off      Status = "off"      // powered off
	Deleting Status = "deleting" // going away
)

// Server is one machine at a cloud.
type Server struct {
	ID      string            `json:"id"`   // the cloud's id
	Name    string            `json:"name"` // its hostname, and the node's name once enrolled
	Type    string            `json:"type"`
	Region  string            `json:"region"`
	Image   string            `json:"image"`
	Labels  map[string]string `json:"labels,omitempty"`
	Status  Status            `json:"status"`
	IPv4    string            `json:"ipv4,omitempty"` // public address; empty until assigned
	Created time.Time         `json:"created"`
}

// CreateRequest is a server to create. UserData is cloud-init's (a
// #cloud-config document, see package cloudinit).
type CreateRequest struct {
	Name     string
	Type     string
	Region   string
	Image    string
	UserData string
	Labels   map[string]string
}

// ServerType is a size a cloud sells, with its published price.
type ServerType struct {
	Name        string   `json:"name"`
	CPUMilli    int64    `json:"cpuMilli"`
	MemoryBytes int64    `json:"memoryBytes"`
	DiskBytes   int64    `json:"diskBytes"`
	Regions     []string `json:"regions,omitempty"` // where it can be created; empty: everywhere
	Hourly      float64  `json:"hourly"`            // price per started hour (hourly billing) or per hour
	Monthly     float64  `json:"monthly"`           // the monthly cap or price
	Currency    string   `json:"currency"`          // "USD", "EUR"
	// BilledHourly: each started hour is billed whole (Hetzner), so an
	// idle server is kept until shortly before its hour ends.
	BilledHourly bool `json:"billedHourly,omitempty"`
}

// Provider is one cloud account (one API token).
type Provider interface {
	// Kind is "local", "digitalocean" or "hetzner".
	Kind() string
	// Types lists the server types the account can create, with prices.
	Types(ctx context.Context) ([]ServerType, error)
	// Create asks for a server and returns once the cloud accepted it
	// (the server may still be Pending). An error of class Capacity says
	// this type or region has none: try the next.
	Create(ctx context.Context, req CreateRequest) (Server, error)
	// Get reports one server; ErrNotFound once it is gone.
	Get(ctx context.Context, id string) (Server, error)
	// List returns every server (all pages) carrying all the labels.
	List(ctx context.Context, labels map[string]string) ([]Server, error)
	// Destroy deletes a server; one already gone is not an error.
	Destroy(ctx context.Context, id string) error
}

// Imager is a provider that can snapshot a (powered off) server into an
// image new servers are created from: moat pool image.
type Imager interface {
	Snapshot(ctx context.Context, serverID, name string) (image string, err error)
	DeleteImage(ctx context.Context, image string) error
}

// Error classes. Providers wrap their client's errors so that errors.Is
// finds one of these; RateLimited also carries how long to wait.
var (
	ErrNotFound  = errors.New("not found at the provider")
	ErrCapacity  = errors.New("the provider has no capacity for this server type in this region")
	ErrTemporary = errors.New("temporary provider failure")
	ErrAuth      = errors.New("the provider refused the API token")
)

// RateLimited is a 429: wait RetryAfter (from Retry-After or the reset
// header) before the next call.
type RateLimited struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited by the provider (retry after %s): %v", e.RetryAfter, e.Err)
}
func (e *RateLimited) Unwrap() error { return e.Err }

// Machines are what stands behind a cloud API served on this machine for
// tests (the fake DigitalOcean and Hetzner APIs): a server created through
// the official client becomes a real machine here (provider/local's Cloud
// implements it), so create → boot → enrol runs for real.
type Machines interface {
	// Boot makes a machine from an image ("debian-12" or a snapshot),
	// applies the user data as the image's boot would, starts its sshd
	// (and the node daemon if the image has moat), and returns its address.
	Boot(ctx context.Context, name, image, userData string) (ipv4 string, err error)
	// Destroy removes the machine and its disk; an unknown name is not an error.
	Destroy(ctx context.Context, name string) error
	// Snapshot copies a machine's disk into a new image and returns its id.
	Snapshot(ctx context.Context, name string) (image string, err error)
}
