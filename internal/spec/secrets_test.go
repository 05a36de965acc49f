package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSecrets(t *testing.T) {
	base := "name: web\nimage: web:1\nenv: {MODE: prod}\n"
	a, err := Parse([]byte(base+"secrets: [{name: db_password}, {name: api_key, env: API_KEY}, {name: tls, reload: signal}, {name: x.pem, reload: signal, signal: SIGUSR1}]\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Secret{{Name: "db_password"}, {Name: "api_key", Env: "API_KEY"}, {Name: "tls", Reload: ReloadSignal, Signal: "SIGHUP"}, {Name: "x.pem", Reload: ReloadSignal, Signal: "SIGUSR1"}}
	if diff := cmp.Diff(want, a.Secrets); diff != "" {
		t.Fatalf("secrets (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"secrets: [{name: ../x}]", `secrets[0].name: "../x"`},
		{"secrets: [{name: .env}]", `secrets[0].name: ".env"`},
		{"secrets: [{name: a}, {name: a}]", `secrets[1].name: "a" is also secrets[0]`},
		{"secrets: [{name: a, env: MODE}]", `secrets[0].env: "MODE" is also set in env`},
		{"secrets: [{name: a, env: X}, {name: b, env: X}]", `secrets[1].env: "X" is also the variable of secret a`},
		{"secrets: [{name: a, env: 'A=B'}]", `secrets[0].env: "A=B"`},
		{"secrets: [{name: a, env: A, reload: signal}]", `secrets[0].reload: a variable cannot change`},
		{"secrets: [{name: a, reload: signal, signal: SIGKILL}]", `secrets[0].signal: "SIGKILL"`},
		{"secrets: [{name: a, signal: SIGHUP}]", `secrets[0].signal: only with reload: signal`},
		{"secrets: [{name: a, reload: always}]", `secrets[0].reload: "always"`},
		{"secrets: [{name: a, value: x}]", `secrets[0].value: unknown field`},
	} {
		_, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
