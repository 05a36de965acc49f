package master

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/master/store"
	"github.com/moatcloud/moat/internal/provider"
)

// The pool manager's decisions, pure: what to create, retire and destroy
// in a pool, where to create, whether the loop breaker lets it, and which
// of a provider's servers are orphans. pools_manager.go acts on them.

// Outcomes of a create call in pool_creations.
const (
	outcomeCalled   = "called"   // the call was made; no answer recorded (yet, or the master died)
	outcomeCreated  = "created"  // the provider accepted it
	outcomeCapacity = "capacity" // no capacity for the type in the region
	outcomeFailed   = "failed"   // any other error
	outcomeTimeout  = "timeout"  // created, but it did not come up within the boot deadline
)

// clampDesired keeps a pool's desired size within its bounds.
func clampDesired(desired, lo, hi int) int {
	if hi < lo {
		hi = lo
	}
	return min(max(desired, lo), hi)
}

// breakerState is the loop breaker of one pool: at most perHour create
// calls in any hour, counting every call whatever it answered, so a
// failure (a type that never boots, a capacity error at every location)
// cannot become a create/destroy loop that costs money.
type breakerState struct {
	Calls     int       // create calls in the last hour
	Remaining int       // calls allowed now
	Open      bool      // no call allowed
	Until     time.Time // when the oldest counted call leaves the hour (if open)
}

// breaker counts the creations in the hour up to now. perHour <= 0 allows
// none (a pool must say how many it may make).
func breaker(creations []store.PoolCreation, perHour int, now time.Time) breakerState {
	var b breakerState
	from := now.Add(-time.Hour)
	var oldest time.Time
	for _, c := range creations {
		if !c.At.After(from) || c.At.After(now) {
			continue
		}
		b.Calls++
		if oldest.IsZero() || c.At.Before(oldest) {
			oldest = c.At
		}
	}
	b.Remaining = max(perHour-b.Calls, 0)
	b.Open = b.Remaining == 0
	if b.Open && !oldest.IsZero() {
		b.Until = oldest.Add(time.Hour)
	}
	return b
}

// placement is where one server is asked for.
type placement struct{ Type, Region string }

// avoidFor is how long a (type, region) that answered a capacity error
// or whose server never came up is tried only after every other.
const avoidFor = 15 * time.Minute

// placements orders where to create a pool's next server: the pool's
// regions in order, within each its types in order (so a capacity error
// moves to the next type first, then the next region), leaving out a type
// the provider says it does not sell in a region. Places that failed
// (capacity, timeout) within avoidFor go last, the most recent failure
// last of all, so a retry goes elsewhere; none is dropped, so a pool whose
// every place failed still tries, under the breaker.
func placements(types, regions []string, sold []provider.ServerType, recent []store.PoolCreation, now time.Time) []placement {
	// A provider may list a type once per region (Hetzner: its price
	// differs by location): the regions are the union, and one entry
	// without regions sells it everywhere.
	where := map[string][]string{}
	known, everywhere := map[string]bool{}, map[string]bool{}
	for _, t := range sold {
		known[t.Name] = true
		where[t.Name] = append(where[t.Name], t.Regions...)
		if len(t.Regions) == 0 {
			everywhere[t.Name] = true
		}
	}
	if len(regions) == 0 {
		regions = []string{""}
	}
	var all []placement
	for _, r := range regions {
		for _, t := range types {
			if known[t] && r != "" && !everywhere[t] && !slices.Contains(where[t], r) {
				continue
			}
			all = append(all, placement{t, r})
		}
	}
	failed := map[placement]time.Time{}
	for _, c := range recent {
		if (c.Outcome == outcomeCapacity || c.Outcome == outcomeTimeout || c.Outcome == outcomeFailed) && now.Sub(c.At) < avoidFor {
			p := placement{c.Type, c.Region}
			if c.At.After(failed[p]) {
				failed[p] = c.At
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		fi, fj := failed[all[i]], failed[all[j]]
		if fi.IsZero() != fj.IsZero() {
			return fi.IsZero()
		}
		return fi.Before(fj)
	})
	return all
}

// poolPlan is what one pass does to a pool.
type poolPlan struct {
	Desired int
	Active  int // servers counted toward desired: not retiring or destroying
	Create  int // servers to create now (within the breaker)
	// Refused: servers wanted but not created because the breaker is open.
	Refused int
	// Retire: ready servers to drain and destroy (newest, least loaded first).
	Retire []string
	// Destroy: servers to destroy at once: not yet nodes and either in
	// excess or past the boot deadline.
	Destroy []string
	// Kept: ready servers in excess not retired because they hold an app
	// pinned to them by its volumes (its replica cannot move: a drain
	// would never end, the server cordoned and paid for for ever).
	Kept    []string
	Breaker breakerState
}

// poolInput is what planPool decides on.
type poolInput struct {
	Min, Max, Desired int
	PerHour           int
	Servers           []store.PoolServer
	Creations         []store.PoolCreation // the last hour's, at least
	Replicas          map[string]int       // replicas per node
	Pinned            map[string]bool      // nodes an app is pinned to (its volumes): never retired
	Busy              map[string]bool      // servers a goroutine is working on (creating, enrolling, retiring)
	BootDeadline      time.Duration        // from created to ready
	Now               time.Time
}

// planPool decides one pass over a pool: the servers counted are those
// not retiring or destroying; too few, and the missing are created (as
// far as the breaker allows); too many, and the excess goes — first those
// not yet nodes (newest first), then ready nodes with the fewest replicas,
// newest first, never one an app is pinned to (Kept). A server not ready by BootDeadline after its creation,
// and no goroutine of this master bringing it up (which keeps its own
// deadline), is destroyed; its place is retried elsewhere.
func planPool(in poolInput) poolPlan {
	p := poolPlan{Desired: clampDesired(in.Desired, in.Min, in.Max)}
	p.Breaker = breaker(in.Creations, in.PerHour, in.Now)
	var ready, pending []store.PoolServer
	for _, s := range in.Servers {
		switch s.State {
		case store.ServerRetiring, store.ServerDestroying:
			continue
		case store.ServerReady:
			ready = append(ready, s)
		default:
			if s.ProviderID == "" && !in.Busy[s.Name] {
				// A create call not under way in this master whose
				// answer was lost (it timed out, or the master died):
				// not counted, so a replacement is made; the orphan pass
				// finds the server by name (adopted, then in excess) or
				// forgets the row.
				continue
			}
			if in.BootDeadline > 0 && in.Now.Sub(s.Created) > in.BootDeadline && s.ProviderID != "" && !in.Busy[s.Name] {
				// Past its deadline: destroyed, and not counted, so a
				// replacement is created in the same pass.
				p.Destroy = append(p.Destroy, s.Name)
				continue
			}
			pending = append(pending, s)
		}
	}
	p.Active = len(ready) + len(pending)
	switch {
	case p.Active < p.Desired:
		want := p.Desired - p.Active
		p.Create = min(want, p.Breaker.Remaining)
		p.Refused = want - p.Create
	case p.Active > p.Desired:
		excess := p.Active - p.Desired
		// Not yet nodes, newest first.
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].Created.After(pending[j].Created) })
		for _, s := range pending {
			if excess == 0 {
				break
			}
			if s.ProviderID != "" && !in.Busy[s.Name] {
				p.Destroy = append(p.Destroy, s.Name)
			}
			// One still being created or brought up goes at a later
			// pass (as ready, or once its id is known) rather than a
			// node being drained for it.
			excess--
		}
		sort.SliceStable(ready, func(i, j int) bool {
			ri, rj := in.Replicas[ready[i].Name], in.Replicas[ready[j].Name]
			if ri != rj {
				return ri < rj
			}
			return ready[i].Created.After(ready[j].Created)
		})
		for _, s := range ready {
			if excess == 0 {
				break
			}
			if in.Pinned[s.Name] {
				continue
			}
			p.Retire = append(p.Retire, s.Name)
			excess--
		}
		for _, s := range ready {
			if excess > 0 && in.Pinned[s.Name] {
				p.Kept = append(p.Kept, s.Name)
				excess--
			}
		}
	}
	return p
}

// orphanInput is what the orphan reconciler decides on: the provider's
// servers listed by the cluster's label, and the servers moat knows.
type orphanInput struct {
	Cluster string
	Listed  []provider.Server
	Known   []store.PoolServer
	Busy    map[string]bool // names a create call is under way for
	Grace   time.Duration
	Now     time.Time
}

// builderGrace is the least grace of moat pool image's builder server.
const builderGrace = 2 * time.Hour

// orphanPlan: servers to destroy, rows to give the id the provider lists
// for them (a create whose answer was lost), and rows to forget (a create
// call that made nothing).
type orphanPlan struct {
	Destroy []provider.Server
	Waiting []provider.Server          // unknown, within the grace
	Adopt   map[string]provider.Server // row name → the server found by it
	Forget  []string
}

// orphans decides which listed servers are orphans: carrying this
// cluster's label (checked again here, whatever the provider's filter
// did: a server without it is never touched), unknown to moat by id or
// by name, and older than the grace (a server the provider lists before
// its create call answered is not one: the grace covers that). A known
// row in creating with no id is matched by name: found, it is adopted;
// not found and older than the grace, it is forgotten.
func orphans(in orphanInput) orphanPlan {
	p := orphanPlan{Adopt: map[string]provider.Server{}}
	byID, byName := map[string]store.PoolServer{}, map[string]store.PoolServer{}
	for _, k := range in.Known {
		if k.ProviderID != "" {
			byID[k.ProviderID] = k
		}
		byName[k.Name] = k
	}
	listedNames := map[string]bool{}
	for _, s := range in.Listed {
		if in.Cluster == "" || s.Labels[provider.LabelCluster] != in.Cluster {
			continue
		}
		listedNames[s.Name] = true
		if _, ok := byID[s.ID]; ok {
			continue
		}
		if k, ok := byName[s.Name]; ok {
			if k.ProviderID == "" {
				p.Adopt[k.Name] = s
				continue
			}
			// The name is known with another id: a second server of the
			// same name is an orphan like any other.
		}
		grace := in.Grace
		if s.Labels[enroll.LabelRole] == enroll.RoleBuilder {
			// moat pool image's builder, snapshotting (minutes at some
			// clouds): the operator's CLI destroys it; only one left
			// behind by a CLI that died is the reconciler's.
			grace = max(grace, builderGrace)
		}
		if in.Busy[s.Name] || s.Created.IsZero() || in.Now.Sub(s.Created) < grace {
			p.Waiting = append(p.Waiting, s)
			continue
		}
		p.Destroy = append(p.Destroy, s)
	}
	for _, k := range in.Known {
		if k.ProviderID == "" && !listedNames[k.Name] && !in.Busy[k.Name] && in.Now.Sub(k.Created) > in.Grace {
			p.Forget = append(p.Forget, k.Name)
		}
	}
	return p
}

// maxCreateBackoff bounds the wait between failed creations.
const maxCreateBackoff = 5 * time.Minute

// createBackoff is the wait before a pool's next creation after fails
// failed in a row: base, doubling, at most maxCreateBackoff. A failure
// must not spend the breaker's hourly allowance in one burst.
func createBackoff(base time.Duration, fails int) time.Duration {
	if fails <= 0 || base <= 0 {
		return 0
	}
	d := base << min(fails-1, 30)
	if d <= 0 || d > maxCreateBackoff {
		return max(base, maxCreateBackoff)
	}
	return d
}

// breakerNote is the line moat pool ls and the log say about an open breaker.
func breakerNote(pool string, b breakerState, perHour, refused int) string {
	return fmt.Sprintf("pool %s: loop breaker open: %d create calls in the last hour (max-creates-per-hour %d); %d server(s) not created until %s",
		pool, b.Calls, perHour, refused, b.Until.UTC().Format(time.RFC3339))
}
