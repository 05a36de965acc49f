// Package rollout plans the next step of bringing an app to its target:
// how many replicas of the current template to start and which replicas to
// stop, under the app's update strategy (rolling with max surge and max
// unavailable, canary, blue-green) and the singleton rule. Pure: it sees a
// snapshot and returns a step; the master applies it and asks again.
package rollout

import "slices"

// State of a replica the master wants running.
type State string

// States.
const (
	Pending  State = "pending"  // no container yet
	Starting State = "starting" // running, not yet healthy
	Ready    State = "ready"    // running and healthy (or running, without a check)
	Failed   State = "failed"   // exited for good, unhealthy, or crash-looping
	Unknown  State = "unknown"  // its node is unreachable
)

// Replica is one replica the master wants running.
type Replica struct {
	ID      string
	Node    string
	Current bool // runs the target template
	Drain   bool // on a draining node, or moving for spread: to be replaced like an old one
	State   State
}

// Strategies.
const (
	Rolling   = "rolling"
	Canary    = "canary"
	BlueGreen = "blue-green"
)

// Input is a snapshot of one app.
type Input struct {
	Desired        int
	Strategy       string
	MaxSurge       int
	MaxUnavailable int
	Canary         int  // canary replicas
	Promoted       bool // canary: go on past the canaries
	Singleton      bool
	Replicas       []Replica // in creation order
	// Terminating counts replicas being stopped whose containers may still
	// run. A singleton and a blue-green switch wait for them; a rolling
	// update does not count them against its surge (as Kubernetes does):
	// they are on their way out.
	Terminating int
}

// Step is what to do next.
type Step struct {
	Start int      // replicas of the current template to start
	Stop  []string // replicas to stop
	Phase Phase
}

// Phase says where the app stands.
type Phase string

// Phases.
const (
	Progressing Phase = "progressing"
	Waiting     Phase = "canary" // canaries ready, waiting to be promoted
	Done        Phase = "done"
)

// Plan returns the next step.
func Plan(in Input) Step {
	cur, old := split(in.Replicas)
	if in.Singleton {
		return planSingleton(in, cur, old)
	}
	switch in.Strategy {
	case Canary:
		// Canaries are compared with the old replicas: with none (a first
		// deploy, a scale) there is nothing to wait for.
		if !in.Promoted && in.Canary < in.Desired && len(old) > 0 {
			return planCanary(in, cur, old)
		}
	case BlueGreen:
		return planBlueGreen(in, cur, old)
	}
	return planRolling(in, cur, old)
}

// split separates replicas of the current template (not draining) from
// the rest, which are to be replaced.
func split(rs []Replica) (cur, old []Replica) {
	for _, r := range rs {
		if r.Current && !r.Drain {
			cur = append(cur, r)
		} else {
			old = append(old, r)
		}
	}
	return cur, old
}

func planRolling(in Input, cur, old []Replica) Step {
	maxTotal := in.Desired + max(in.MaxSurge, 0)
	if in.MaxSurge <= 0 && in.MaxUnavailable <= 0 {
		maxTotal = in.Desired + 1 // both zero would deadlock: surge by one
	}
	minReady := in.Desired - max(in.MaxUnavailable, 0)
	step := Step{Phase: Progressing}
	// Surplus of the current template (scaled down): the least useful go.
	if len(cur) > in.Desired {
		surplus := leastUseful(cur, len(cur)-in.Desired)
		step.Stop = append(step.Stop, surplus...)
		cur = without(cur, surplus)
	}
	total := len(cur) + len(old)
	step.Start = max(0, min(in.Desired-len(cur), maxTotal-total))
	// Old replicas go while enough stay ready; the not-ready go first,
	// since they serve nothing.
	ready := count(cur, Ready) + count(old, Ready)
	for _, r := range byUsefulness(old) {
		if r.State == Ready {
			if ready-1 < minReady {
				break
			}
			ready--
		}
		step.Stop = append(step.Stop, r.ID)
	}
	if len(old) == 0 && in.Terminating == 0 && len(step.Stop) == 0 && len(cur) == in.Desired && count(cur, Ready) == in.Desired && step.Start == 0 {
		step.Phase = Done
	}
	return step
}

func planCanary(in Input, cur, old []Replica) Step {
	step := Step{Phase: Progressing}
	if len(cur) > in.Canary {
		step.Stop = leastUseful(cur, len(cur)-in.Canary)
		cur = without(cur, step.Stop)
	}
	step.Start = max(0, in.Canary-len(cur))
	if step.Start == 0 && count(cur, Ready) == in.Canary {
		step.Phase = Waiting
	}
	return step
}

// planBlueGreen starts the whole new set beside the old and switches only
// when every new replica is ready.
func planBlueGreen(in Input, cur, old []Replica) Step {
	step := Step{Phase: Progressing}
	if len(cur) > in.Desired {
		step.Stop = leastUseful(cur, len(cur)-in.Desired)
		cur = without(cur, step.Stop)
	}
	step.Start = max(0, in.Desired-len(cur))
	if step.Start == 0 && count(cur, Ready) == in.Desired {
		for _, r := range old {
			step.Stop = append(step.Stop, r.ID)
		}
		if len(old) == 0 && len(step.Stop) == 0 && in.Terminating == 0 {
			step.Phase = Done
		}
	}
	return step
}

// planSingleton never lets two copies overlap: the old one stops, and the
// new one starts only once nothing else can be running.
func planSingleton(in Input, cur, old []Replica) Step {
	step := Step{Phase: Progressing}
	keep := min(in.Desired, 1)
	if len(cur) > keep {
		step.Stop = leastUseful(cur, len(cur)-keep)
		cur = without(cur, step.Stop)
	}
	for _, r := range old {
		step.Stop = append(step.Stop, r.ID)
	}
	if len(cur) < keep && len(old) == 0 && in.Terminating == 0 {
		step.Start = 1
	}
	if len(cur) == keep && len(old) == 0 && len(step.Stop) == 0 && in.Terminating == 0 && count(cur, Ready) == keep {
		step.Phase = Done
	}
	return step
}

var usefulness = map[State]int{Failed: 0, Unknown: 1, Pending: 2, Starting: 3, Ready: 4}

// byUsefulness orders replicas least useful first, keeping creation order
// among equals (the oldest of equally useful ones goes first).
func byUsefulness(rs []Replica) []Replica {
	out := make([]Replica, 0, len(rs))
	for u := 0; u <= 4; u++ {
		for _, r := range rs {
			if usefulness[r.State] == u {
				out = append(out, r)
			}
		}
	}
	return out
}

// leastUseful returns the IDs of the n least useful replicas. Among
// equally useful ones, the one on the node holding most of them goes
// (scaling down evens the spread), then the newest (scaling down keeps the
// longest-running ones).
func leastUseful(rs []Replica, n int) []string {
	left := slices.Clone(rs)
	perNode := map[string]int{}
	for _, r := range rs {
		perNode[r.Node]++
	}
	var ids []string
	for len(ids) < n && len(left) > 0 {
		best := len(left) - 1
		for i := len(left) - 2; i >= 0; i-- {
			r, b := left[i], left[best]
			if usefulness[r.State] < usefulness[b.State] ||
				usefulness[r.State] == usefulness[b.State] && perNode[r.Node] > perNode[b.Node] {
				best = i
			}
		}
		ids = append(ids, left[best].ID)
		perNode[left[best].Node]--
		left = slices.Delete(left, best, best+1)
	}
	return ids
}

func without(rs []Replica, ids []string) []Replica {
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	var out []Replica
	for _, r := range rs {
		if !drop[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

func count(rs []Replica, s State) int {
	n := 0
	for _, r := range rs {
		if r.State == s {
			n++
		}
	}
	return n
}
