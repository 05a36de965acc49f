// Package access decides who may do what on the master: the caller of a
// request (a user, how they proved it, the tenant they act in) and, from
// their roles, whether an action is allowed. It is pure: the master's
// HTTP layer finds the caller, the store keeps users and roles.
package access

import "context"

// Caller is who made a request, as the master established it: never what
// the request says of itself.
type Caller struct {
	// User is the user's name; "root" on the master's local socket.
	User string `json:"user"`
	// Credential says how the user proved it: "local socket", an SSH key's
	// fingerprint, or a certificate's key id, serial and CA.
	Credential string `json:"credential"`
	// Local is true for root on the master's own unix socket, which may do
	// everything (whoever is root on the master's host is anyway).
	Local bool `json:"local,omitempty"`
	// Tenant is the tenant the request acts in.
	Tenant string `json:"tenant,omitempty"`
}

// Root is the caller on the master's local socket.
var Root = Caller{User: "root", Credential: "local socket", Local: true}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries; false when none does (the
// master acting by itself).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
