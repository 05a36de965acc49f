package sched

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func tenant(n Node, t string) Node { n.Tenant = t; return n }
func shared(n Node) Node           { n.Shared = true; return n }

// A tenant's replicas go only to its own nodes and shared ones, whatever
// the other nodes offer; the reason for what does not fit names the
// tenant.
func TestPlaceTenants(t *testing.T) {
	acme, beta := func(n Node) Node { return tenant(n, "acme") }, func(n Node) Node { return tenant(n, "beta") }
	tests := []struct {
		name  string
		nodes []Node
		req   Request
		want  Result
	}{
		{"own node despite a bigger one of another tenant",
			[]Node{beta(node("big", 8000, 32)), acme(node("a1", 1000, 4))},
			Request{Tenant: "acme", Count: 2, Resources: small}, Result{Nodes: []string{"a1", "a1"}}},
		{"shared node of another tenant takes it",
			[]Node{beta(node("b1", 8000, 32)), shared(beta(node("s1", 1000, 4)))},
			Request{Tenant: "acme", Count: 1, Resources: small}, Result{Nodes: []string{"s1"}}},
		{"spread over own and shared only",
			[]Node{acme(node("a1", 1000, 4)), shared(tenant(node("s1", 1000, 4), "default")), beta(node("b1", 1000, 4)), beta(node("b2", 1000, 4))},
			Request{Tenant: "acme", Count: 4, Resources: small, Spread: true}, Result{Nodes: []string{"a1", "s1", "a1", "s1"}}},
		{"fills own and shared, never another tenant's",
			[]Node{acme(node("a1", 1000, 4)), shared(node("s1", 1000, 4)), beta(node("b1", 8000, 32))},
			Request{Tenant: "acme", Count: 12, Resources: Resources{200, gi / 8}},
			Result{Nodes: []string{"a1", "s1", "a1", "s1", "a1", "s1", "a1", "s1", "a1", "s1"}, Unplaced: 2,
				Reason: "no node of tenant acme or shared fits: 2 nodes lack CPU, 1 belongs to another tenant"}},
		{"only other tenants' nodes",
			[]Node{beta(node("b1", 8000, 32)), beta(node("b2", 8000, 32))},
			Request{Tenant: "acme", Count: 1, Resources: small},
			Result{Unplaced: 1, Reason: "no node of tenant acme or shared fits: 2 nodes belong to other tenants"}},
		{"another tenant's node counts as that, even when down",
			[]Node{down(beta(node("b1", 8000, 32))), down(acme(node("a1", 1000, 4)))},
			Request{Tenant: "acme", Count: 1, Resources: small},
			Result{Unplaced: 1, Reason: "no node of tenant acme or shared fits: 1 node belongs to another tenant, 1 down"}},
		{"pinned to another tenant's node",
			[]Node{beta(node("b1", 8000, 32)), acme(node("a1", 1000, 4))},
			Request{Tenant: "acme", Count: 1, Resources: small, Pinned: "b1"},
			Result{Unplaced: 1, Reason: "pinned node b1 belongs to another tenant"}},
		{"no tenant in the request: any node",
			[]Node{beta(node("big", 8000, 32)), acme(node("a1", 1000, 4))},
			Request{Count: 1, Resources: small}, Result{Nodes: []string{"big"}}},
		{"default tenant's nodes are not shared",
			[]Node{tenant(node("d1", 8000, 32), "default"), acme(node("a1", 1000, 4))},
			Request{Tenant: "default", Count: 2, Resources: small}, Result{Nodes: []string{"d1", "d1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Place(tt.nodes, tt.req)); diff != "" {
				t.Errorf("Place (-want +got):\n%s", diff)
			}
		})
	}
}

// Moving a replica for spread never takes it to another tenant's node.
func TestRebalanceTenants(t *testing.T) {
	nodes := []Node{tenant(node("a1", 1000, 4), "acme"), tenant(node("a2", 1000, 4), "acme"), tenant(node("b1", 8000, 32), "beta")}
	req := Request{Tenant: "acme", Resources: small, Spread: true, Existing: map[string]int{"a1": 2, "a2": 1}}
	if from := Rebalance(nodes, req); from != "" {
		t.Errorf("moved from %s though only another tenant's node has fewer", from)
	}
	req.Existing = map[string]int{"a1": 3}
	if from := Rebalance(nodes, req); from != "a1" {
		t.Errorf("Rebalance = %q, want a1 (a2 is acme's and empty)", from)
	}
}
