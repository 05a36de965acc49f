package nodeapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestValidateSecrets(t *testing.T) {
	env := []byte("age-encryption.org/v1...")
	ok := SecretMount{Name: "db_password", Envelope: env}
	if err := validateSecrets([]SecretMount{ok, {Name: "tls.pem", Envelope: env, Signal: "SIGHUP"}, {Name: "k", Envelope: env, Env: "API_KEY"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ss   []SecretMount
		want string
	}{
		{[]SecretMount{{Name: "../x", Envelope: env}}, "secrets[0].name"},
		{[]SecretMount{{Name: ".x", Envelope: env}}, "secrets[0].name"},
		{[]SecretMount{ok, ok}, "secrets[1].name"},
		{[]SecretMount{{Name: "a"}}, "secrets[0].envelope"},
		{[]SecretMount{{Name: "a", Envelope: make([]byte, MaxEnvelopeBytes+1)}}, "secrets[0].envelope"},
		{[]SecretMount{{Name: "a", Envelope: env, Env: "A=B"}}, "secrets[0].env"},
		{[]SecretMount{{Name: "a", Envelope: env, Signal: "SIGKILL"}}, "secrets[0].signal"},
		{[]SecretMount{{Name: "a", Envelope: env, Signal: "SIGHUP", Env: "A"}}, "secrets[0].signal"},
	} {
		err := validateSecrets(tt.ss)
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want invalid naming %s", tt.ss[len(tt.ss)-1].Name, err, tt.want)
		}
	}
	if err := (&SecretsUpdate{}).Validate(); err == nil {
		t.Error("an empty update validates")
	}
}
