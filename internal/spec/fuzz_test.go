package spec

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/moatcloud/moat/internal/errs"
)

// FuzzParse: Parse never panics; it returns either a zero App and an *Error,
// or an App that validates, also after a JSON round trip.
func FuzzParse(f *testing.F) {
	for _, s := range append([]string{
		full, base, "", "---\n", "- a\n", base + "---\n" + base,
		base + "replicas: 10\nupdate: {maxSurge: 25%, maxUnavailable: 10%}\n",
		base + "replicas: 3\nupdate: {strategy: canary, canary: 1, promote: auto}\n",
		base + "ports: [{port: 53, protocol: udp}, {port: 80}]\nhealth: {tcp: true, interval: 150ms}\n",
		base + "singleton: true\nvolumes: [&v {node: n1, source: /a, target: /a}]\n",
		base + "env: &e {A: b}\nplacement: {labels: *e}\n",
		base + "replicas: 3\nautoscale: {min: 2, max: 20, cpu: 70%}\n",
		base + "ports: [{port: 80}]\ningress: [{host: a.b, port: 80}]\nautoscale: {max: 4, rps: 2.5}\n",
	}, docExamples(f)...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, errs.ErrInvalid) || e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("error %v (%T) is not an *Error for the file wrapping ErrInvalid", err, err)
			}
			if diff := cmp.Diff(App{}, app); diff != "" {
				t.Fatalf("App returned with an error (-want +got):\n%s", diff)
			}
			return
		}
		if err := app.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v\n%q", err, data)
		}
		js, err := json.Marshal(app)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back App
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if diff := cmp.Diff(app, back); diff != "" {
			t.Fatalf("JSON round trip changed the App (-parsed +loaded):\n%s", diff)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("reloaded spec does not validate: %v\n%q", err, data)
		}
	})
}
