// Package spec is the app spec operators write: its YAML format, strict
// parsing, defaults and validation, with errors that name the field and
// the line. Pure: no I/O.
//
// Parse turns the bytes of an app.yaml into an App with every default filled
// in and every relative value resolved (percentages against replicas, port
// names to numbers), or returns an *Error and no App. Validate re-checks an
// App that was stored or built in code. The format is documented in
// docs/app-spec.md.
package spec

import "time"

// App is one application as the master stores it: defaults filled in,
// nothing left to resolve.
type App struct {
	Name      string            `json:"name"`
	Image     string            `json:"image"`
	Replicas  int               `json:"replicas"`
	Command   []string          `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Resources Resources         `json:"resources"`
	Ports     []Port            `json:"ports,omitempty"`
	Health    *Health           `json:"health,omitempty"`
	Placement Placement         `json:"placement"`
	Update    Update            `json:"update"`
	Restart   string            `json:"restart"`
	Volumes   []Volume          `json:"volumes,omitempty"`
	Singleton bool              `json:"singleton,omitempty"`
	Security  Security          `json:"security,omitzero"`
	Secrets   []Secret          `json:"secrets,omitempty"`   // secrets.go
	Links     []Link            `json:"links,omitempty"`     // links.go
	Ingress   []Ingress         `json:"ingress,omitempty"`   // ingress.go
	Alerts    Alerts            `json:"alerts,omitzero"`     // alerts.go
	Autoscale *Autoscale        `json:"autoscale,omitempty"` // autoscale.go
}

// Security can only narrow what the app's containers may do: an image
// declares its privileges in its signed config, and the spec may drop
// some; it can never add one.
type Security struct {
	Drop []string `json:"drop,omitempty"` // privileges the image declares that the app does without
}

// Resources are what each replica reserves on its node and is limited to.
type Resources struct {
	MilliCPU    int64 `json:"milliCPU"` // 1000 = one core
	MemoryBytes int64 `json:"memoryBytes"`
}

// Port is a port the app listens on inside its container.
type Port struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // ProtoTCP or ProtoUDP, always set
}

// Health is how the node decides that a replica is healthy.
type Health struct {
	HTTPPath    string        `json:"httpPath,omitempty"` // empty: a TCP connect check
	Port        int           `json:"port"`               // a declared tcp port's number
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"startPeriod"` // failures during it do not count
	Retries     int           `json:"retries"`     // consecutive failures before unhealthy
}

// Placement constrains which nodes may run the app's replicas.
type Placement struct {
	Labels map[string]string `json:"labels,omitempty"` // all must match the node's
	Spread bool              `json:"spread"`           // one replica per node while another node fits
	// NoRebalance (rebalance: false) keeps replicas where they are when a
	// node comes back or joins; by default the master moves them, one at
	// a time, until the spread is as even as it can be. Stored inverted so
	// that specs from before it existed keep the default.
	NoRebalance bool `json:"noRebalance,omitempty"`
}

// Update is how a new revision replaces the running one.
type Update struct {
	Strategy       string        `json:"strategy"`       // StrategyRolling, StrategyCanary or StrategyBlueGreen
	MaxSurge       int           `json:"maxSurge"`       // rolling: extra replicas allowed, resolved against Replicas
	MaxUnavailable int           `json:"maxUnavailable"` // rolling: replicas that may be missing, resolved
	Canary         int           `json:"canary,omitempty"`
	Promote        string        `json:"promote,omitempty"` // canary: PromoteManual or PromoteAuto
	Deadline       time.Duration `json:"deadline"`          // time to become healthy before rollback
	// Drain is how long a replica being replaced or scaled away keeps
	// running after it leaves the pool (no new connections or requests
	// reach it) before it is stopped, so requests in flight finish.
	// Default DefaultDrain for an app with ingress routes, else 0.
	Drain time.Duration `json:"drain,omitempty"`
}

// Volume is a host directory bind-mounted into the app's containers. It
// pins the app to its node.
type Volume struct {
	Node     string `json:"node"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// Update strategies.
const (
	StrategyRolling   = "rolling"
	StrategyCanary    = "canary"
	StrategyBlueGreen = "blue-green"
)

// Restart policies.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Canary promotion modes.
const (
	PromoteManual = "manual" // wait for moat promote
	PromoteAuto   = "auto"   // promote once the canaries are healthy
)

// Port protocols.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// Defaults and limits.
const (
	DefaultMilliCPU    = 250
	DefaultMemoryBytes = 128 << 20
	MinMilliCPU        = 10
	MaxMilliCPU        = 1024 * 1000
	MinMemoryBytes     = 6 << 20
	MaxReplicas        = 1000

	DefaultInterval   = 2 * time.Second
	DefaultTimeout    = time.Second // or the interval, when that is shorter
	DefaultRetries    = 3
	MinInterval       = 100 * time.Millisecond
	MaxHealthDuration = time.Hour
	MaxRetries        = 100
	DefaultDeadline   = 2 * time.Minute
	MinDeadline       = time.Second
	MaxDeadline       = 24 * time.Hour
	DefaultMaxSurge   = 1
	DefaultDrain      = 30 * time.Second
	MaxDrain          = time.Hour
)

// PinnedNode returns the node the app's volumes pin it to, or "".
func (a App) PinnedNode() string {
	if len(a.Volumes) == 0 {
		return ""
	}
	return a.Volumes[0].Node
}

// defaults returns an App holding every top-level default, for the parser
// to overwrite with what the spec says.
func defaults() App {
	return App{
		Replicas:  1,
		Resources: Resources{MilliCPU: DefaultMilliCPU, MemoryBytes: DefaultMemoryBytes},
		Placement: Placement{Spread: true},
		Update:    Update{Strategy: StrategyRolling, Deadline: DefaultDeadline},
		Restart:   RestartAlways,
	}
}
