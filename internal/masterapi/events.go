package masterapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moatcloud/moat/internal/wire"
)

// Event kinds: what happened.
const (
	EventNodeUp        = "node-up"        // the master's connection to the node came up
	EventNodeDown      = "node-down"      // it went down, or could not be made
	EventDeploy        = "deploy"         // a revision was made and starts rolling out
	EventScale         = "scale"          // a revision with another replica count
	EventRollback      = "rollback"       // a revision going back to an earlier one (asked for, or after a failure)
	EventDeployed      = "deployed"       // a revision's rollout finished
	EventDeployFailed  = "deploy-failed"  // a revision's rollout failed
	EventRestart       = "restart"        // a container restarted
	EventOOM           = "oom"            // a container's process was killed for memory
	EventAlert         = "alert"          // an alert fired (internal/master/alerts.go)
	EventAlertResolved = "alert-resolved" // and resolved
	EventMetricsGap    = "metrics-gap"    // samples a node took were lost before the master pulled them
)

// Event is one entry of the master's event log: what happened to a node
// or an app, and when. The log is bounded (the newest 100,000, at most 30
// days); a tenant's caller sees its apps' events only, a caller who may
// list nodes also the nodes' own.
type Event struct {
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Node     string    `json:"node,omitempty"`
	App      string    `json:"app,omitempty"`
	Tenant   string    `json:"tenant,omitempty"` // the app's, when not the default tenant
	Replica  string    `json:"replica,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// EventQuery selects events: GET /v1/events?since=&app=&node=&limit=&after=&follow=1.
type EventQuery struct {
	Since string // a duration back from now ("1h", "2d") or a time (ParseSince)
	App   string
	Node  string
	After int64 // only events with a greater ID (resuming a follow)
	Limit int   // the newest Limit of those already logged (0: the server's default, 1,000)
	// Follow keeps the stream open: the events already logged, then each
	// new one as it is logged.
	Follow bool
}

// DefaultEventLimit is how many logged events a query answers when it
// names no limit, and MaxEventLimit the most it may ask for.
const (
	DefaultEventLimit = 1000
	MaxEventLimit     = 100_000
)

func (q EventQuery) values() url.Values {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Node != "" {
		v.Set("node", q.Node)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	return v
}

// Events reads the event log, oldest first (q.Follow is ignored).
func (c *Client) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	q.Follow = false
	var out []Event
	return out, c.Call(ctx, http.MethodGet, "/v1/events?"+q.values().Encode(), nil, &out)
}

// FollowEvents streams the event log into fn, one event per line: those
// logged already, then each new one, until ctx ends or fn fails.
func (c *Client) FollowEvents(ctx context.Context, q EventQuery, fn func(Event) error) error {
	q.Follow = true
	resp, err := c.Request(ctx, http.MethodGet, "/v1/events?"+q.values().Encode(), nil)
	if err != nil {
		return err
	}
	return wire.Stream(ctx, resp, fn)
}
