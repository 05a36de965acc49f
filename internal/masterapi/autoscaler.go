package masterapi

import (
	"context"
	"net/http"
	"time"
)

// AutoscalerStatus is what the autoscalers last decided, and why — the
// decisions taken and those not taken: GET /v1/autoscaler (moat
// autoscaler status). A caller who may not list nodes sees its tenant's
// apps only, and no pools or nodes.
type AutoscalerStatus struct {
	// ScaleUp is the last pass that found replicas no node could take;
	// nil when none has since the master started.
	ScaleUp *ScaleUpDecision `json:"scaleUp,omitempty"`
	// ScaleDown is the last look at the pools' nodes for idle ones.
	ScaleDown *ScaleDownDecision `json:"scaleDown,omitempty"`
	// Actions are the latest things the cluster autoscaler did (or
	// failed to), newest last.
	Actions []AutoscalerAction `json:"actions,omitempty"`
	// Apps is the app autoscaler's last decision per autoscaled app.
	Apps []AppAutoscale `json:"apps,omitempty"`
}

// ScaleUpDecision is one scale-up decision.
type ScaleUpDecision struct {
	Time     time.Time      `json:"time"`
	Unplaced []UnplacedApp  `json:"unplaced"`
	Pools    []PoolDecision `json:"pools,omitempty"`
	Reuse    []string       `json:"reuse,omitempty"` // draining nodes taken back
	Took     time.Duration  `json:"took"`            // how long deciding took
}

// UnplacedApp is an app with replicas no node could take, and what they
// wait for — or why no pool helps.
type UnplacedApp struct {
	App      string `json:"app"`
	Replicas int    `json:"replicas"`
	Waiting  string `json:"waiting,omitempty"`  // "waiting for 2 new nodes in pool p1"
	Unhelped string `json:"unhelped,omitempty"` // why no pool can take them
}

// PoolDecision is what a decision did with one pool: nodes added, or why
// not.
type PoolDecision struct {
	Pool   string `json:"pool"`
	Add    int    `json:"add,omitempty"`
	Reason string `json:"reason"`
}

// ScaleDownDecision is one look for idle nodes.
type ScaleDownDecision struct {
	Time    time.Time      `json:"time"`
	Pending string         `json:"pending,omitempty"` // why no node is retired now
	Nodes   []NodeDecision `json:"nodes,omitempty"`
}

// NodeDecision is what a scale-down decision did with one pool node.
type NodeDecision struct {
	Node      string    `json:"node"`
	Pool      string    `json:"pool"`
	Retire    bool      `json:"retire,omitempty"`
	IdleSince time.Time `json:"idleSince,omitzero"`
	Reason    string    `json:"reason"`
}

// Autoscaler action kinds.
const (
	ActionGrow   = "grow"   // nodes asked of a pool
	ActionReuse  = "reuse"  // a draining node taken back
	ActionRetire = "retire" // an idle node drained and destroyed
)

// AutoscalerAction is one thing the cluster autoscaler did.
type AutoscalerAction struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Pool   string    `json:"pool,omitempty"`
	Node   string    `json:"node,omitempty"`
	Count  int       `json:"count,omitempty"`
	Reason string    `json:"reason"`
	Error  string    `json:"error,omitempty"` // the pool manager refused or failed
}

// AppAutoscale is the app autoscaler's last decision for one app.
type AppAutoscale struct {
	App       string        `json:"app"`
	Min       int           `json:"min"`
	Max       int           `json:"max"`
	Current   int           `json:"current"`
	Desired   int           `json:"desired"`
	Metrics   []AppScaleRow `json:"metrics,omitempty"`
	Decided   time.Time     `json:"decided,omitzero"`
	Reason    string        `json:"reason"`
	Changed   bool          `json:"changed,omitempty"`
	LastScale time.Time     `json:"lastScale,omitzero"`
}

// AppScaleRow is one metric an app autoscales on: observed and target.
type AppScaleRow struct {
	Name     string  `json:"name"` // "cpu" (percent of requested) or "rps" (per replica)
	Value    float64 `json:"value"`
	Target   float64 `json:"target"`
	Replicas int     `json:"replicas"` // what this metric alone asks for
}

// Autoscaler reads the autoscalers' last decisions.
func (c *Client) Autoscaler(ctx context.Context) (AutoscalerStatus, error) {
	var out AutoscalerStatus
	return out, c.Call(ctx, http.MethodGet, "/v1/autoscaler", nil, &out)
}
