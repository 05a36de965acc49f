package autoscale

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/sched"
)

// Node is a pool node, as scale-down sees it.
type Node struct {
	Name, Pool string
	// Sched is the node as the scheduler sees it: capacity, and what the
	// replicas the master wants there request.
	Sched sched.Node
	Ready bool // up and in sync
	// DownSince is since when the master cannot reach it (zero: it can,
	// or has not tried long enough to say).
	DownSince time.Time
	// Cordoned by an operator (not by a retirement): left alone.
	Cordoned bool
	Retiring bool // being drained and destroyed already
	// Apps are the requests that would place its replicas elsewhere, one
	// per app, Count its replicas on this node.
	Apps []sched.Request
	// Pinned names the apps whose volumes are on it; Singletons the
	// singleton apps with a replica on it (running, or stopping and not
	// surely stopped: it may hold the lease).
	Pinned, Singletons []string
	// BilledSince is when the server's billing started; BilledHourly
	// whether its type bills each started hour.
	BilledSince  time.Time
	BilledHourly bool
	// IdleSince is since when it was found idle, from the previous
	// decision; zero when it was not.
	IdleSince time.Time
}

// DownInput is what a scale-down decision looks at.
type DownInput struct {
	Now   time.Time
	Pools []Pool
	Nodes []Node // the pools' nodes
	// Cluster is every node the scheduler sees (pool nodes too), where a
	// retired node's replicas would go.
	Cluster []sched.Node
	// Pending says why nothing is retired now ("" when it may be): replicas
	// wait for room, or a scale-up is on its way.
	Pending string
	// Utilisation is the share of CPU and memory a node's replicas may
	// request and the node still count as idle (0: DefaultUtilisation).
	Utilisation float64
	// Refuses says, per app, the nodes that do not accept its image.
	Refuses map[string]map[string]bool
}

// NodeNote is the decision about one node.
type NodeNote struct {
	Node, Pool string
	Retire     bool
	// IdleSince is the idle clock to remember for the next decision:
	// zero when the node is not idle.
	IdleSince time.Time
	Reason    string
}

// Down decides which pool nodes to retire: a node down (unreachable) for
// its pool's IdleAfter, unless it holds a pinned volume or a singleton
// (its disk may be all there is of them); a node that has been idle (its replicas request at most Utilisation of its CPU and
// memory, and fit on other nodes) for its pool's IdleAfter, its pool stays
// at or above min without it, it holds no pinned volume and no singleton,
// nothing waits for room, and — for an hourly-billed type in a pool that
// keeps the billed hour — its billed hour ends within BillWindow. Empty
// nodes go together; at most one node with replicas goes per decision, so
// that two drains never count on the same room. Every node gets a note.
func Down(in DownInput) []NodeNote {
	util := in.Utilisation
	if util <= 0 {
		util = DefaultUtilisation
	}
	pools := map[string]Pool{}
	left := map[string]int{} // per pool, nodes staying up
	for _, p := range in.Pools {
		pools[p.Name] = p
		left[p.Name] = p.Ready
	}
	cluster := slices.Clone(in.Cluster)
	gone := map[string]bool{}
	for _, n := range in.Nodes {
		if n.Retiring {
			gone[n.Name] = true
		}
	}
	nodes := slices.Clone(in.Nodes)
	// Empty nodes first, then the least used: they cost least to move.
	slices.SortStableFunc(nodes, func(a, b Node) int {
		if c := cmp.Compare(used(a.Sched), used(b.Sched)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var out []NodeNote
	emptied := false
	for _, n := range nodes {
		p := pools[n.Pool]
		note := NodeNote{Node: n.Name, Pool: n.Pool}
		idle := func() {
			note.IdleSince = n.IdleSince
			if note.IdleSince.IsZero() || note.IdleSince.After(in.Now) {
				note.IdleSince = in.Now
			}
		}
		switch {
		case n.Retiring:
			note.Reason = "being retired"
		case n.Cordoned:
			note.Reason = "cordoned by an operator"
		case len(n.Pinned) > 0:
			note.Reason = "holds pinned volume of app " + strings.Join(n.Pinned, ", ")
		case len(n.Singletons) > 0:
			note.Reason = "holds singleton lease of app " + strings.Join(n.Singletons, ", ")
		case !n.Ready && (n.DownSince.IsZero() || in.Now.Sub(n.DownSince) < p.idleAfter()):
			note.Reason = "not up"
			if !n.DownSince.IsZero() {
				note.Reason = fmt.Sprintf("down %s of %s", short(in.Now.Sub(n.DownSince)), short(p.idleAfter()))
			}
		case !n.Ready:
			// Down for as long as an idle node is kept: its replicas
			// went elsewhere; the server still costs and holds a
			// place under max (min is the pool manager's to make up).
			note.Retire = true
			note.Reason = fmt.Sprintf("down %s (after %s): replaced if the pool needs it", short(in.Now.Sub(n.DownSince)), short(p.idleAfter()))
			gone[n.Name] = true
		case used(n.Sched) > util:
			note.Reason = "busy: " + usage(n.Sched) + " requested"
		default:
			moved, why := fitsElsewhere(n, cluster, gone, in.Refuses)
			if why != "" {
				note.Reason = why
				break
			}
			idle()
			idleFor, after := in.Now.Sub(note.IdleSince), p.idleAfter()
			switch {
			case idleFor < after:
				note.Reason = fmt.Sprintf("idle %s of %s", short(idleFor), short(after))
			case in.Pending != "":
				note.Reason = "idle, kept: " + in.Pending
			case left[n.Pool] <= p.Min:
				note.Reason = fmt.Sprintf("idle, kept: pool %s at min (%d)", n.Pool, p.Min)
			case len(n.Apps) > 0 && emptied:
				note.Reason = "idle, kept: another node is being emptied"
			default:
				if ends := hourLeft(n, p, in.Now); ends > BillWindow {
					note.Reason = fmt.Sprintf("idle, kept: billed hour ends in %s", short(ends))
					break
				}
				note.Retire = true
				note.Reason = fmt.Sprintf("idle %s (after %s), pool %s above min (%d > %d)", short(idleFor), short(after), n.Pool, left[n.Pool], p.Min)
				if len(n.Apps) > 0 {
					emptied = true
					cluster = moved
					note.Reason += "; its replicas fit elsewhere"
				}
				left[n.Pool]--
				gone[n.Name] = true
			}
		}
		out = append(out, note)
	}
	slices.SortFunc(out, func(a, b NodeNote) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// hourLeft is how long until the node's billed hour ends, when its pool
// keeps billed hours and its type bills them; zero otherwise.
func hourLeft(n Node, p Pool, now time.Time) time.Duration {
	if !n.BilledHourly || !p.KeepBilledHour || n.BilledSince.IsZero() || n.BilledSince.After(now) {
		return 0
	}
	return time.Hour - now.Sub(n.BilledSince)%time.Hour
}

// fitsElsewhere places the node's replicas on the other nodes that are
// not going away, and returns the cluster with them placed, or why they
// do not fit.
func fitsElsewhere(n Node, cluster []sched.Node, gone map[string]bool, refuses map[string]map[string]bool) ([]sched.Node, string) {
	if len(n.Apps) == 0 {
		return cluster, ""
	}
	var others []sched.Node
	for _, c := range cluster {
		if c.Name != n.Name && !gone[c.Name] {
			others = append(others, c)
		}
	}
	idx := map[string]int{}
	for i, c := range others {
		idx[c.Name] = i
	}
	for _, r := range n.Apps {
		for i := range others {
			others[i].RefusesImage = refuses[r.App][others[i].Name]
		}
		res := sched.Place(others, r)
		if res.Unplaced > 0 {
			return nil, fmt.Sprintf("its replicas of app %s fit on no other node (%s)", r.App, res.Reason)
		}
		for _, name := range res.Nodes {
			o := &others[idx[name]]
			o.Allocated.MilliCPU += max(r.Resources.MilliCPU, 0)
			o.Allocated.MemoryBytes += max(r.Resources.MemoryBytes, 0)
		}
	}
	out := slices.Clone(cluster)
	for i, c := range out {
		if j, ok := idx[c.Name]; ok {
			out[i].Allocated = others[j].Allocated
		}
	}
	return out, ""
}

// used is the larger of the node's requested CPU and memory shares.
func used(n sched.Node) float64 {
	return max(share(n.Allocated.MilliCPU, n.Capacity.MilliCPU), share(n.Allocated.MemoryBytes, n.Capacity.MemoryBytes))
}

func share(a, c int64) float64 {
	if a <= 0 {
		return 0
	}
	if c <= 0 {
		return 1
	}
	return float64(a) / float64(c)
}

func usage(n sched.Node) string {
	return fmt.Sprintf("%.0f%% cpu, %.0f%% memory", 100*share(n.Allocated.MilliCPU, n.Capacity.MilliCPU), 100*share(n.Allocated.MemoryBytes, n.Capacity.MemoryBytes))
}

// short writes a duration the way an operator reads it: 45s, 4m, 1h5m.
func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
