package spec

import (
	"strings"
	"testing"
)

// TestAlerts: alerts: sets the app's thresholds, strictly, and errors
// name the field and its line.
func TestAlerts(t *testing.T) {
	base := "name: web\nimage: web:1\n"
	a, err := Parse([]byte(base+"alerts: {memory: 80%, restarts: 3}\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Alerts != (Alerts{Memory: 80, Restarts: 3}) {
		t.Errorf("alerts: %+v", a.Alerts)
	}
	a, err = Parse([]byte(base), "app.yaml")
	if err != nil || a.Alerts != (Alerts{}) {
		t.Errorf("no alerts: %+v, %v; want the zero value (defaults)", a.Alerts, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"alerts: {memory: 80}", `app.yaml:3: alerts.memory: 80 (a number): want a percentage of the memory limit such as 80%`},
		{"alerts: {memory: '80'}", `app.yaml:3: alerts.memory: "80": want a percentage`},
		{"alerts: {memory: 8.5%}", `alerts.memory: "8.5%"`},
		{"alerts: {memory: 101%}", `app.yaml:3: alerts.memory: 101%: want 10% to 100%`},
		{"alerts: {memory: 5%}", `alerts.memory: 5%: want 10% to 100%`},
		{"alerts:\n  memory: 80%\n  restarts: -1", `app.yaml:5: alerts.restarts: -1: want 1 to 10000`},
		{"alerts: {restarts: '5'}", `alerts.restarts: "5" is a string`},
		{"alerts: {cpu: 80%}", `app.yaml:3: alerts.cpu: unknown field: want one of memory, restarts`},
		{"alerts: {memory: 80%, memory: 70%}", `alerts.memory: given twice`},
		{"alerts: [memory]", `app.yaml:3: alerts: want a mapping of fields, not a list`},
	} {
		_, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// Validate, for a stored spec.
	a.Alerts = Alerts{Memory: 150}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "alerts.memory") {
		t.Errorf("Validate of memory 150%%: %v", err)
	}
}
