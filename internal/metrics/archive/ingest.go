package archive

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Ingest takes one record pulled from node. The node's own group feeds
// nodes/<node>; each container group feeds replicas/<id> and apps/<app>;
// each route group routes/<host>. It takes what it can: a group refused
// (another node's name, a replica the master did not place on this node, a
// bad name) is counted and named in the returned error, the others are
// kept. A record more than MaxFuture ahead is refused whole. Retrying a
// record is harmless: what was taken is dropped the second time.
func (s *Store) Ingest(node string, rec nodeapi.MetricsRecord) error {
	if !validName(node) {
		s.count(func(st *Stats) { st.Refused += uint64(len(rec.Groups)) })
		return errs.Invalid("node", "%q is not a valid node name", node)
	}
	if ahead := rec.Time.Sub(s.o.Now()); ahead > MaxFuture {
		s.count(func(st *Stats) { st.Refused += uint64(len(rec.Groups)) })
		return fmt.Errorf("metrics of node %q at %s: %v ahead of the master's clock: %w", node, rec.Time.Format("15:04:05"), ahead.Round(1e9), errs.ErrInvalid)
	}
	ns := rec.Time.UnixNano()
	var refused []string
	var c Stats
	for _, g := range rec.Groups {
		ok, err := s.group(node, ns, g, &c)
		if err != nil {
			return fmt.Errorf("metrics of node %q: %w", node, err)
		}
		if !ok {
			c.Refused++
			if len(refused) < 3 {
				refused = append(refused, fmt.Sprintf("%s %q", kindName(g.Kind), g.Name))
			}
		}
	}
	s.count(func(st *Stats) {
		st.Samples += c.Samples
		st.Dropped += c.Dropped
		st.Refused += c.Refused
		st.Ignored += c.Ignored
	})
	if c.Refused > 0 {
		return fmt.Errorf("metrics of node %q: refused %d groups (%s): %w", node, c.Refused, strings.Join(refused, ", "), errs.ErrForbidden)
	}
	return nil
}

func (s *Store) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func kindName(k byte) string {
	switch k {
	case nodeapi.GroupNode:
		return "node"
	case nodeapi.GroupContainer:
		return "container"
	case nodeapi.GroupRoute:
		return "route"
	}
	return fmt.Sprintf("kind %d", k)
}

// group takes one group; false: refused.
func (s *Store) group(node string, ns int64, g nodeapi.MetricsGroup, c *Stats) (bool, error) {
	switch g.Kind {
	case nodeapi.GroupNode:
		if g.Name != node {
			return false, nil
		}
		return true, s.feed(key{kindNode, node}, node, "", node, ns, g.Values, c)
	case nodeapi.GroupContainer:
		app := AppOf(g.Name)
		if !validName(g.Name) || !validName(app) || (s.o.ReplicaOn != nil && !s.o.ReplicaOn(node, g.Name)) {
			return false, nil
		}
		return true, s.feed(key{kindReplica, g.Name}, node, app, node, ns, g.Values, c)
	case nodeapi.GroupRoute:
		if !validName(g.Name) {
			return false, nil
		}
		app, ok := "", false
		if s.o.RouteApp != nil {
			app, ok = s.o.RouteApp(g.Name)
		}
		if !ok {
			c.Ignored++
			return true, nil
		}
		return true, s.feed(key{kindRoute, g.Name}, node, app, node, ns, g.Values, c)
	}
	c.Ignored++
	return true, nil
}

// feed adds a sample to an entity's table unless its source already sent
// one as new, a replica's to its app's table too, and keeps it as the
// entity's latest.
func (s *Store) feed(k key, node, app, src string, ns int64, vals []float64, c *Stats) error {
	t, err := s.lockTable(k)
	if t == nil {
		return err // nil: removed meanwhile
	}
	took := false
	err = t.guard(func() {
		if took = t.accept(src, ns); took {
			t.add(ns, vals)
		}
	})
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if !took {
		c.Dropped++
		return nil
	}
	c.Samples++
	s.setLatest(k, node, app, ns, vals)
	if k.kind != kindReplica {
		return nil
	}
	var buf [maxFields]float64
	av := buf[:len(appFields)]
	for i := range av {
		av[i] = math.NaN()
		if i < len(vals) {
			av[i] = vals[i]
		}
	}
	av[len(av)-1] = 1 // the "replicas" field counts samples (see History)
	at, err := s.lockTable(key{kindApp, app})
	if at == nil {
		return err
	}
	err = at.guard(func() { at.add(ns, av) })
	at.mu.Unlock()
	return err
}

// lockTable returns the entity's table mapped and locked, making it if
// needed; nil when it was removed meanwhile (and the error, if any).
func (s *Store) lockTable(k key) (*table, error) {
	for {
		t, err := s.table(k, true)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		if t.b != nil {
			return t, nil
		}
		evicted := t.evicted
		t.mu.Unlock()
		if !evicted {
			return nil, nil
		}
	}
}

func (s *Store) setLatest(k key, node, app string, ns int64, vals []float64) {
	n := len(fieldsOf(k.kind))
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.latest[k]
	if l == nil {
		l = &masterapi.Latest{Kind: apiKind(k.kind), Name: k.name, Values: make([]masterapi.Value, n)}
		s.latest[k] = l
	} else if l.Time.UnixNano() > ns {
		return // a route's older sample from another edge
	}
	l.Node, l.App = node, app
	l.Time = unixTime(ns)
	for i := range l.Values {
		l.Values[i] = masterapi.Value(math.NaN())
		if i < len(vals) {
			l.Values[i] = masterapi.Value(vals[i])
		}
	}
}

// Latest returns the newest sample of every node, replica and route,
// sorted by kind and name; a replica or route not sampled for LatestTTL is
// left out (stopped or moved), a node never (its age says it is down).
func (s *Store) Latest() []masterapi.Latest {
	now := s.o.Now()
	s.mu.Lock()
	out := make([]masterapi.Latest, 0, len(s.latest))
	for k, l := range s.latest {
		if k.kind != kindNode && now.Sub(l.Time) > LatestTTL {
			continue
		}
		c := *l
		c.Values = slices.Clone(l.Values)
		out = append(out, c)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b masterapi.Latest) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func apiKind(k byte) string {
	switch k {
	case kindNode:
		return masterapi.MetricsNode
	case kindApp:
		return masterapi.MetricsApp
	case kindReplica:
		return masterapi.MetricsReplica
	case kindRoute:
		return masterapi.MetricsRoute
	}
	return ""
}

func storeKind(kind string) (byte, error) {
	switch kind {
	case masterapi.MetricsNode:
		return kindNode, nil
	case masterapi.MetricsApp:
		return kindApp, nil
	case masterapi.MetricsReplica:
		return kindReplica, nil
	case masterapi.MetricsRoute:
		return kindRoute, nil
	}
	return 0, errs.Invalid("kind", "%q is not node, app, replica or route", kind)
}
