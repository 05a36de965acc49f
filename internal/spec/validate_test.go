package spec

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

// full is a spec that sets something in every section.
const full = `
name: web
image: hello:1
replicas: 3
command: [/hello]
args: [--verbose]
env: {LOG_LEVEL: debug}
resources: {cpu: 500m, memory: 128Mi}
ports:
  - {name: http, port: 8080}
  - {name: metrics, port: 9090}
health: {http: /healthz, port: http, startPeriod: 5s}
placement: {labels: {zone: a}}
update: {maxSurge: 50%, maxUnavailable: 1}
volumes: [{node: n1, source: /srv/web, target: /data, readOnly: true}]
`

// docExamples returns the YAML examples in docs/app-spec.md: each must parse.
func docExamples(t testing.TB) []string {
	data, err := os.ReadFile("../../docs/app-spec.md")
	if err != nil {
		t.Fatalf("read the spec documentation: %v", err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	return out
}

func TestDocExamplesParse(t *testing.T) {
	examples := docExamples(t)
	if len(examples) < 3 {
		t.Fatalf("docs/app-spec.md has %d yaml examples, want at least 3", len(examples))
	}
	for i, ex := range examples {
		if _, err := Parse([]byte(ex), "example.yaml"); err != nil {
			t.Errorf("example %d: %v\n%s", i, err, ex)
		}
	}
}

func TestValidateRoundTrip(t *testing.T) {
	specs := append([]string{full, base, base + "singleton: true\nvolumes: [{node: n1, source: /a, target: /a}]\n"}, docExamples(t)...)
	for _, spec := range specs {
		app, err := Parse([]byte(spec), "app.yaml")
		if err != nil {
			t.Fatalf("Parse: %v\n%s", err, spec)
		}
		data, err := json.Marshal(app)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back App
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if diff := cmp.Diff(app, back); diff != "" {
			t.Errorf("JSON round trip changed the App (-parsed +loaded):\n%s", diff)
		}
		if err := back.Validate(); err != nil {
			t.Errorf("Validate after a JSON round trip: %v", err)
		}
	}
}

func TestValidateMutated(t *testing.T) {
	tests := []struct {
		field  string
		mutate func(a *App)
	}{
		{"name", func(a *App) { a.Name = "" }},
		{"name", func(a *App) { a.Name = "Web" }},
		{"image", func(a *App) { a.Image = "hello 1" }},
		{"replicas", func(a *App) { a.Replicas = -2 }},
		{"command[0]", func(a *App) { a.Command = []string{""} }},
		{"args[0]", func(a *App) { a.Args = []string{"a\x00b"} }},
		{"env.A=B", func(a *App) { a.Env = map[string]string{"A=B": "c"} }},
		{"resources.cpu", func(a *App) { a.Resources.MilliCPU = 0 }},
		{"resources.memory", func(a *App) { a.Resources.MemoryBytes = 0 }},
		{"ports[1].name", func(a *App) { a.Ports[1].Name = "http" }},
		{"ports[1].port", func(a *App) { a.Ports[1].Port = 8080 }},
		{"ports[0].protocol", func(a *App) { a.Ports[0].Protocol = "" }},
		{"health.port", func(a *App) { a.Health.Port = 9999 }},
		{"health.http", func(a *App) { a.Health.HTTPPath = "healthz" }},
		{"health.interval", func(a *App) { a.Health.Interval = 0 }},
		{"health.timeout", func(a *App) { a.Health.Timeout = 0 }},
		{"health.timeout", func(a *App) { a.Health.Timeout = time.Minute }},
		{"health.retries", func(a *App) { a.Health.Retries = 0 }},
		{"placement.labels.-x", func(a *App) { a.Placement.Labels = map[string]string{"-x": "y"} }},
		{"update.strategy", func(a *App) { a.Update.Strategy = "" }},
		{"update.maxSurge", func(a *App) { a.Update.MaxSurge = 0; a.Update.MaxUnavailable = 0 }},
		{"update.canary", func(a *App) {
			a.Update = Update{Strategy: StrategyCanary, Promote: PromoteManual, Deadline: time.Minute}
		}},
		{"update.promote", func(a *App) { a.Update = Update{Strategy: StrategyCanary, Canary: 1, Deadline: time.Minute} }},
		{"update.maxSurge", func(a *App) { a.Update.Strategy = StrategyBlueGreen }},
		{"update.deadline", func(a *App) { a.Update.Deadline = 0 }},
		{"restart", func(a *App) { a.Restart = "" }},
		{"volumes[0].source", func(a *App) { a.Volumes[0].Source = "srv" }},
		{"volumes[0].node", func(a *App) { a.Volumes[0].Node = "" }},
		{"singleton", func(a *App) { a.Singleton = true; a.Update.MaxSurge = 0 }},
		{"update.maxSurge", func(a *App) { a.Singleton = true; a.Replicas = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			app, err := Parse([]byte(full), "app.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.mutate(&app)
			err = app.Validate()
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Validate = %v, want an *Error wrapping ErrInvalid", err)
			}
			if e.Field != tt.field || e.Line != 0 || e.File != "" {
				t.Errorf("Validate = %q (field %q), want field %q and no position", err, e.Field, tt.field)
			}
		})
	}
}
