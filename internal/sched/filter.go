package sched

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Node classes for filtering and for Reason, in filter order: a node counts
// under the first filter it fails. The label classes come next, one per
// required label in key order, then classCPU and classMemory, whose numbers
// depend on how many labels the request has (see state.classCPU).
const (
	pass = iota - 1
	classOtherTenant
	classDown
	classCordoned
	classNotPinned
	classUnsigned
	classLabel // first of len(labels) classes
)

type label struct{ key, value string }

func sortedLabels(m map[string]string) []label {
	ls := make([]label, 0, len(m))
	for k, v := range m {
		ls = append(ls, label{k, v})
	}
	slices.SortFunc(ls, func(a, b label) int { return cmp.Compare(a.key, b.key) })
	return ls
}

func (s *state) classCPU() int    { return classLabel + len(s.labels) }
func (s *state) classMemory() int { return classLabel + len(s.labels) + 1 }

// staticClass runs the filters that do not change while replicas are
// placed, once per node and call.
func (s *state) staticClass(nd *Node) int {
	switch {
	case s.tenant != "" && !nd.Shared && nd.Tenant != s.tenant:
		return classOtherTenant
	case nd.Down:
		return classDown
	case nd.Cordoned:
		return classCordoned
	case s.pinned != "" && nd.Name != s.pinned:
		return classNotPinned
	case nd.RefusesImage:
		return classUnsigned
	}
	for i, l := range s.labels {
		if v, ok := nd.Labels[l.key]; !ok || v != l.value {
			return classLabel + i
		}
	}
	return pass
}

// classOf is the first filter node p fails now.
func (s *state) classOf(p int) int {
	cpu, mem := s.short(p)
	switch {
	case s.class[p] != pass:
		return s.class[p]
	case cpu:
		return s.classCPU()
	case mem:
		return s.classMemory()
	}
	return pass
}

// reason says why no node takes another replica: for a pinned app what is
// wrong with its node, otherwise how many nodes fail each filter, the most
// common first and ties in filter order, as in
// "3 nodes lack memory, 2 lack labels zone=a, 1 down". A tenant's request
// says whose nodes were looked for: "no node of tenant acme or shared
// fits: 2 nodes belong to other tenants, 1 lacks memory".
func (s *state) reason() string {
	if len(s.name) == 0 {
		return "no nodes"
	}
	if s.tenant != "" && s.pinned == "" {
		return "no node of tenant " + s.tenant + " or shared fits: " + s.counts()
	}
	return s.counts()
}

// counts is reason without the tenant.
func (s *state) counts() string {
	if s.pinned != "" {
		p, found := slices.BinarySearch(s.name, s.pinned)
		if !found {
			return "pinned node " + s.pinned + " not found"
		}
		c := s.classOf(p)
		if c == classDown || c == classCordoned {
			return "pinned node " + s.pinned + " is " + s.phrase(c, 1)
		}
		return "pinned node " + s.pinned + " " + s.phrase(c, 1)
	}
	counts := make([]int, s.classMemory()+1)
	for p := range s.name {
		if c := s.classOf(p); c != pass {
			counts[c]++
		}
	}
	classes := make([]int, 0, len(counts))
	for c, n := range counts {
		if n > 0 {
			classes = append(classes, c)
		}
	}
	slices.SortStableFunc(classes, func(a, b int) int { return cmp.Compare(counts[b], counts[a]) })
	var b strings.Builder
	for i, c := range classes {
		n := counts[c]
		switch {
		case i > 0:
			b.WriteString(", " + strconv.Itoa(n) + " ")
		case n == 1:
			b.WriteString("1 node ")
		default:
			b.WriteString(strconv.Itoa(n) + " nodes ")
		}
		b.WriteString(s.phrase(c, n))
	}
	return b.String()
}

// phrase describes class c for n nodes: "down", "lack memory", "lacks CPU".
func (s *state) phrase(c, n int) string {
	verb := func(one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	switch c {
	case classOtherTenant:
		return verb("belongs to another tenant", "belong to other tenants")
	case classDown:
		return "down"
	case classCordoned:
		return "cordoned"
	case classNotPinned:
		return verb("is not ", "are not ") + s.pinned
	case classUnsigned:
		return verb("does", "do") + " not accept the image's signature"
	case s.classCPU():
		return verb("lacks", "lack") + " CPU"
	case s.classMemory():
		return verb("lacks", "lack") + " memory"
	}
	l := s.labels[c-classLabel]
	return verb("lacks", "lack") + " labels " + l.key + "=" + l.value
}
