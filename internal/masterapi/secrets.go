package masterapi

import (
	"context"
	"net/http"
	"time"
)

// Secret is what the master says about one secret of an app: never its
// value, which it cannot read.
type Secret struct {
	Tenant  string    `json:"tenant"`
	App     string    `json:"app"`
	Name    string    `json:"name"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// PutSecretRequest stores a secret's next version (PUT
// /v1/apps/{app}/secrets/{name}): an envelope sealed on the operator's
// machine (package secret), bound to the tenant, app, name and version.
type PutSecretRequest struct {
	// Tenant is the tenant the envelope is bound to, which must be the
	// one the request acts in.
	Tenant   string `json:"tenant"`
	Version  int    `json:"version"`
	Envelope []byte `json:"envelope"`
}

// SecretEnvelope is one secret's envelope, for a rotation of the
// cluster's secrets key (GET and PUT /v1/secrets).
type SecretEnvelope struct {
	Tenant   string `json:"tenant"`
	App      string `json:"app"`
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Envelope []byte `json:"envelope"`
}

// Secrets lists an app's secrets.
func (c *Client) Secrets(ctx context.Context, app string) ([]Secret, error) {
	var out []Secret
	return out, c.Call(ctx, http.MethodGet, "/v1/apps/"+esc(app)+"/secrets", nil, &out)
}

// PutSecret stores a secret's next version.
func (c *Client) PutSecret(ctx context.Context, app, name string, req PutSecretRequest) (Secret, error) {
	var out Secret
	return out, c.Call(ctx, http.MethodPut, "/v1/apps/"+esc(app)+"/secrets/"+esc(name), req, &out)
}

// RemoveSecret deletes a secret.
func (c *Client) RemoveSecret(ctx context.Context, app, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/apps/"+esc(app)+"/secrets/"+esc(name), nil, nil)
}

// SecretEnvelopes returns every secret's envelope, in every tenant.
func (c *Client) SecretEnvelopes(ctx context.Context) ([]SecretEnvelope, error) {
	var out []SecretEnvelope
	return out, c.Call(ctx, http.MethodGet, "/v1/secrets", nil, &out)
}

// ReplaceSecretEnvelopes swaps envelopes, all or none, each at the
// version given (a rotation).
func (c *Client) ReplaceSecretEnvelopes(ctx context.Context, envs []SecretEnvelope) error {
	return c.Call(ctx, http.MethodPut, "/v1/secrets", envs, nil)
}
