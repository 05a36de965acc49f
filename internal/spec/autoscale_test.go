package spec

import (
	"strings"
	"testing"
)

// TestAutoscale: autoscale: is read strictly, replicas becomes the
// starting count (min when left out), and every error names the field
// and its line.
func TestAutoscale(t *testing.T) {
	base := "name: web\nimage: web:1\n"
	ing := "ports: [{name: http, port: 8080}]\ningress: [{host: web.example.com, port: http}]\n"
	for _, tc := range []struct {
		yaml     string
		want     Autoscale
		replicas int
	}{
		{"autoscale: {min: 2, max: 20, cpu: 70%}", Autoscale{Min: 2, Max: 20, CPU: 70}, 2},
		{"replicas: 5\nautoscale: {min: 2, max: 20, cpu: 70%}", Autoscale{Min: 2, Max: 20, CPU: 70}, 5},
		{"autoscale: {max: 3, cpu: 50%}", Autoscale{Min: 1, Max: 3, CPU: 50}, 1},
		{ing + "autoscale: {min: 2, max: 20, cpu: 70%, rps: 50}", Autoscale{Min: 2, Max: 20, CPU: 70, RPS: 50}, 2},
		{ing + "autoscale:\n  min: 1\n  max: 4\n  rps: 2.5", Autoscale{Min: 1, Max: 4, RPS: 2.5}, 1},
		{"autoscale: {min: 3, max: 3, cpu: 95%}", Autoscale{Min: 3, Max: 3, CPU: 95}, 3},
	} {
		a, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if a.Autoscale == nil || *a.Autoscale != tc.want || a.Replicas != tc.replicas {
			t.Errorf("%s: autoscale %+v, replicas %d; want %+v, %d", tc.yaml, a.Autoscale, a.Replicas, tc.want, tc.replicas)
		}
	}
	if a, err := Parse([]byte(base+"autoscale:\n"), "app.yaml"); err != nil || a.Autoscale != nil || a.Replicas != 1 {
		t.Errorf("autoscale with no value: %+v, %d, %v; want none", a.Autoscale, a.Replicas, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"autoscale: {min: 2, max: 20, cpu: 70}", `app.yaml:3: autoscale.cpu: 70 (a number): want a percentage of each replica's CPU (resources.cpu) such as 70%`},
		{"autoscale: {min: 2, max: 20, cpu: 7.5%}", `autoscale.cpu: "7.5%": want a percentage`},
		{"autoscale: {min: 2, max: 20, cpu: 100%}", `app.yaml:3: autoscale.cpu: 100%: want 5% to 95%`},
		{"autoscale: {min: 2, max: 20, cpu: 1%}", `autoscale.cpu: 1%: want 5% to 95%`},
		{"autoscale: {min: 0, max: 20, cpu: 70%}", `autoscale.min: 0: want at least 1 (moat does not scale to zero`},
		{"autoscale: {min: -1, max: 20, cpu: 70%}", `autoscale.min: -1: want at least 1`},
		{"autoscale: {min: 2, cpu: 70%}", `app.yaml:3: autoscale.max: required`},
		{"autoscale:\n  min: 5\n  max: 3\n  cpu: 70%", `app.yaml:5: autoscale.max: 3: want min (5) to 1000`},
		{"autoscale: {min: 2, max: 2000, cpu: 70%}", `autoscale.max: 2000: want min (2) to 1000`},
		{"autoscale: {min: '2', max: 20, cpu: 70%}", `autoscale.min: "2" is a string: want a number, without quotes`},
		{"autoscale: {min: 2, max: 20}", `app.yaml:3: autoscale: no target: want cpu (such as 70%) or rps`},
		{"autoscale: {min: 2, max: 20, rps: 50}", `autoscale.rps: needs ingress`},
		{ing + "autoscale: {min: 2, max: 20, rps: -5}", `autoscale.rps: -5: want more than 0`},
		{ing + "autoscale: {min: 2, max: 20, rps: .nan}", `autoscale.rps: ".nan": want requests per second`},
		{ing + "autoscale: {min: 2, max: 20, rps: '50'}", `autoscale.rps: "50": want requests per second per replica`},
		{ing + "autoscale: {min: 2, max: 20, rps: 1e9}", `autoscale.rps: 1e+09: want more than 0, at most 1e+06`},
		{"autoscale: {min: 2, max: 20, memory: 70%}", `app.yaml:3: autoscale.memory: unknown field: want one of min, max, cpu, rps`},
		{"autoscale: {min: 2, min: 3, max: 20, cpu: 70%}", `autoscale.min: given twice`},
		{"autoscale: [2, 20]", `app.yaml:3: autoscale: want a mapping of fields, not a list`},
		{"replicas: 1\nautoscale: {min: 2, max: 20, cpu: 70%}", `app.yaml:3: replicas: 1 is outside autoscale's 2 to 20: leave it out to start at min`},
		{"replicas: 30\nautoscale: {min: 2, max: 20, cpu: 70%}", `replicas: 30 is outside autoscale's 2 to 20`},
		{"singleton: true\nautoscale: {min: 1, max: 1, cpu: 70%}", `autoscale: a singleton runs at most one copy`},
	} {
		_, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
	// Validate, for a stored spec.
	a, err := Parse([]byte(base+"autoscale: {min: 2, max: 4, cpu: 70%}\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.Replicas = 5
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "replicas: 5 is outside") {
		t.Errorf("Validate of 5 replicas autoscaled 2 to 4: %v", err)
	}
	a.Replicas = 4
	if err := a.Validate(); err != nil {
		t.Errorf("Validate of 4 replicas autoscaled 2 to 4: %v", err)
	}
}
