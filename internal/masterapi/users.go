package masterapi

import (
	"context"
	"net/http"
	"time"
)

// User is a user of the master's API: who they are to sshd (keys,
// certificate principals) and their roles.
type User struct {
	Name       string    `json:"name"`
	Created    time.Time `json:"created"`
	Keys       []UserKey `json:"keys"`
	Principals []string  `json:"principals"`
	Roles      []Role    `json:"roles"`
}

// UserKey is one of a user's SSH keys.
type UserKey struct {
	Fingerprint string    `json:"fingerprint"`
	Key         string    `json:"key"` // TYPE BASE64
	Added       time.Time `json:"added"`
}

// Role is a role in a tenant ("*": every tenant).
type Role struct {
	Role   string `json:"role"`
	Tenant string `json:"tenant"`
}

// NewUser adds a user. Keys are authorized_keys lines (options and
// comments are dropped).
type NewUser struct {
	Name       string   `json:"name"`
	Keys       []string `json:"keys,omitempty"`
	Principals []string `json:"principals,omitempty"`
	Roles      []Role   `json:"roles,omitempty"`
}

// KeyRequest adds a key to a user.
type KeyRequest struct {
	Key string `json:"key"`
}

// CA is a certificate authority whose user certificates the master trusts.
type CA struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Key         string    `json:"key"`
	Added       time.Time `json:"added"`
}

// TrustCARequest trusts a CA's public key (an authorized_keys line).
type TrustCARequest struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// AddUser adds a user.
func (c *Client) AddUser(ctx context.Context, u NewUser) (User, error) {
	var out User
	return out, c.Call(ctx, http.MethodPost, "/v1/users", u, &out)
}

// Users lists the users.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.Call(ctx, http.MethodGet, "/v1/users", nil, &out)
}

// RemoveUser removes a user; their open sessions end.
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/users/"+esc(name), nil, nil)
}

// AddUserKey gives a user one more key.
func (c *Client) AddUserKey(ctx context.Context, name, key string) (User, error) {
	var out User
	return out, c.Call(ctx, http.MethodPost, "/v1/users/"+esc(name)+"/keys", KeyRequest{Key: key}, &out)
}

// RemoveUserKey removes one of a user's keys; sessions opened with it end.
func (c *Client) RemoveUserKey(ctx context.Context, name, fingerprint string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/users/"+esc(name)+"/keys/"+esc(fingerprint), nil, nil)
}

// SetRole gives a user a role in a tenant, replacing their role there.
func (c *Client) SetRole(ctx context.Context, name string, r Role) (User, error) {
	var out User
	return out, c.Call(ctx, http.MethodPut, "/v1/users/"+esc(name)+"/roles/"+esc(r.Tenant), r, &out)
}

// RemoveRole removes a user's role in a tenant.
func (c *Client) RemoveRole(ctx context.Context, name, tenant string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/users/"+esc(name)+"/roles/"+esc(tenant), nil, nil)
}

// TrustCA trusts a certificate authority's user certificates.
func (c *Client) TrustCA(ctx context.Context, req TrustCARequest) (CA, error) {
	var out CA
	return out, c.Call(ctx, http.MethodPost, "/v1/cas", req, &out)
}

// UntrustCA stops trusting a CA; sessions opened with its certificates end.
func (c *Client) UntrustCA(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/cas/"+esc(name), nil, nil)
}

// CAs lists the trusted certificate authorities.
func (c *Client) CAs(ctx context.Context) ([]CA, error) {
	var out []CA
	return out, c.Call(ctx, http.MethodGet, "/v1/cas", nil, &out)
}
