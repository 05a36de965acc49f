package httpapi

import (
	"context"
	"net/http"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// SecretControl is apps' secrets: envelopes the master stores and ships
// but cannot open.
type SecretControl interface {
	Secrets(ctx context.Context, app string) ([]masterapi.Secret, error)
	PutSecret(ctx context.Context, app, name string, req masterapi.PutSecretRequest, actor string) (masterapi.Secret, error)
	RemoveSecret(ctx context.Context, app, name, actor string) error
	// SecretEnvelopes and ReplaceSecretEnvelopes serve a rotation of the
	// cluster's secrets key, which the operator runs.
	SecretEnvelopes(ctx context.Context) ([]masterapi.SecretEnvelope, error)
	ReplaceSecretEnvelopes(ctx context.Context, envs []masterapi.SecretEnvelope, actor string) error
}

func (s *server) secretRoutes(handle handleFunc) {
	handle("GET /v1/apps/{app}/secrets", func(w http.ResponseWriter, r *http.Request) error {
		ss, err := s.cp.Secrets(r.Context(), r.PathValue("app"))
		return reply(w, ss, err)
	})
	handle("PUT /v1/apps/{app}/secrets/{name}", func(w http.ResponseWriter, r *http.Request) error {
		var req masterapi.PutSecretRequest
		if err := wire.Decode(r.Body, &req); err != nil {
			return err
		}
		sec, err := s.cp.PutSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), req, actor(r))
		return reply(w, sec, err)
	})
	handle("DELETE /v1/apps/{app}/secrets/{name}", func(w http.ResponseWriter, r *http.Request) error {
		return replyNone(w, s.cp.RemoveSecret(r.Context(), r.PathValue("app"), r.PathValue("name"), actor(r)))
	})
	handle("GET /v1/secrets", func(w http.ResponseWriter, r *http.Request) error {
		envs, err := s.cp.SecretEnvelopes(r.Context())
		return reply(w, envs, err)
	})
	handle("PUT /v1/secrets", func(w http.ResponseWriter, r *http.Request) error {
		var envs []masterapi.SecretEnvelope
		if err := wire.Decode(r.Body, &envs); err != nil {
			return err
		}
		return replyNone(w, s.cp.ReplaceSecretEnvelopes(r.Context(), envs, actor(r)))
	})
}
