package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// base is a valid start (lines 1 and 2); bad specs add to it from line 3.
const base = "name: web\nimage: hello:1\n"

// tcp8080 declares one port (lines 3 and 4) for health checks to use.
const tcp8080 = base + "ports:\n  - {name: http, port: 8080}\n"

func TestParseBad(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		field      string
		msg        string // a part of the message
	}{
		{"empty file", "", 0, "", "the spec is empty"},
		{"only comments", "# nothing\n", 0, "", "the spec is empty"},
		{"only a document marker", "---\n", 2, "", "the spec is empty"},
		{"two documents", base + "---\n" + base, 3, "", "a second YAML document"},
		{"top-level list", "- name: web\n  image: hello:1\n", 1, "", "the spec is a list: want a mapping"},
		{"top-level scalar", "web\n", 1, "", `the spec is "web"`},
		// yaml.v3's parser counts lines from 0, its scanner from 1: each
		// is put on the line meant. An unclosed [ or { is reported on its
		// line; what the parser meets at the end of the file, on the last line.
		{"syntax error", base + "ports: [\n", 3, "", "invalid YAML: did not find expected node content at the end of the file"},
		{"unclosed list, more fields after", base + "ports: [{name: http, port: 8080}\nreplicas: 3\n", 3, "", "invalid YAML: did not find expected ',' or ']'"},
		{"unclosed mapping, more fields after", base + "env: {A: b\n\n\nreplicas: 3\n", 3, "", "did not find expected ',' or '}'"},
		// Of a construct opened on the first line, yaml names the line
		// where it stopped.
		{"unclosed list on the first line", "command: [a, b\nname: web\nimage: hello:1\n", 2, "", "did not find expected ',' or ']'"},
		{"unclosed list, no newline at the end", base + "ports: [", 3, "", "did not find expected node content"},
		{"list item out of line", base + "ports:\n  - name: a\n   port: 1\n", 4, "", "did not find expected '-' indicator"},
		{"key out of line", base + "env:\n    A: b\n  B: c\n", 5, "", "did not find expected key"},
		{"tabs", base + "env:\n\tA: b\n", 4, "", "invalid YAML: found character that cannot start any token"},
		{"unclosed quote", "name: web\nimage: \"hello:1\nreplicas: 3\n", 2, "", "found unexpected end of stream"},
		{"mapping in a value", "name: web\n  image: hello:1\n", 2, "", "mapping values are not allowed in this context"},
		{"unknown top-level field", base + "imgae: hello:2\n", 3, "imgae", "unknown field: want one of name, image, replicas"},
		{"unknown nested field", base + "resources:\n  cpu: 1\n  memroy: 1Gi\n", 5, "resources.memroy", "unknown field: want one of cpu, memory"},
		{"unknown field in a list item", tcp8080 + "  - {port: 1, proto: udp}\n", 5, "ports[1].proto", "unknown field"},
		{"duplicate key", base + "replicas: 1\nreplicas: 2\n", 4, "replicas", "given twice (first on line 3)"},
		{"merge key", base + "env: {<<: {A: b}}\n", 3, "env", "merge keys"},
		{"complex key", base + "? [a]\n: b\n", 3, "", "a key must be a plain name"},
		{"missing name", "image: hello:1\n", 1, "name", "required"},
		{"missing image", "name: web\nreplicas: 2\n", 1, "image", "required"},
		{"empty name", "name:\nimage: hello:1\n", 1, "name", "no value: want a string"},
		{"bad name", "name: Web_1\nimage: hello:1\n", 1, "name", `"Web_1": want 1 to 30 lowercase`},
		{"name too long", "name: a234567890123456789012345678901\nimage: hello:1\n", 1, "name", "want 1 to 30"},
		{"name a number", "name: 42\nimage: hello:1\n", 1, "name", `42 (a number): want a string: quote it ("42")`},
		{"image with a space", "name: web\nimage: \"hello 1\"\n", 2, "image", "not an image reference"},
		{"image a list", "name: web\nimage: [a]\n", 2, "image", "a list: want a string"},
		{"negative replicas", base + "replicas: -1\n", 3, "replicas", "-1: want 0 to 1000"},
		{"too many replicas", base + "replicas: 1001\n", 3, "replicas", "want 0 to 1000"},
		{"replicas as string", base + "replicas: \"3\"\n", 3, "replicas", `"3" is a string: want a number, without quotes`},
		{"replicas as float", base + "replicas: 1.5\n", 3, "replicas", "want a whole number"},
		{"replicas overflow", base + "replicas: 99999999999999999999\n", 3, "replicas", "want a whole number"},
		{"command not a list", base + "command: /hello\n", 3, "command", `want a list, not "/hello"`},
		{"command item a number", base + "command:\n  - /hello\n  - 1\n", 5, "command[1]", "quote it"},
		{"empty program", base + "command: [\"\"]\n", 3, "command[0]", "empty program"},
		{"env value that is a number", base + "env:\n  A: x\n  PORT: 8080\n", 5, "env.PORT", `8080 (a number): want a string: quote it ("8080")`},
		{"env value that is a bool", base + "env: {DEBUG: true}\n", 3, "env.DEBUG", "quote it"},
		{"env key with =", base + "env: {\"A=B\": x}\n", 3, "env.A=B", "not a variable name"},
		{"env a list", base + "env: [A=b]\n", 3, "env", "want a mapping of fields, not a list"},
		{"drop not a privilege", base + "security:\n  drop: [cap:NET_BIND_SERVICE, all]\n", 4, "security.drop[1]", `"all" is not a privilege`},
		{"drop not a capability", base + "security:\n  drop:\n    - cap:FLY\n", 5, "security.drop[0]", `"FLY" is not a Linux capability`},
		{"security cannot add", base + "security:\n  capAdd: [NET_ADMIN]\n", 4, "security.capAdd", "unknown field: want one of drop"},
		{"memory 12XB", base + "resources:\n  memory: 12XB\n", 4, "resources.memory", `"12XB" is not a size`},
		{"memory too small", base + "resources: {memory: 1Mi}\n", 3, "resources.memory", "1MiB: want at least 6MiB"},
		{"cpu lots", base + "resources:\n  cpu: lots\n", 4, "resources.cpu", `"lots" is not a CPU amount`},
		{"cpu too small", base + "resources: {cpu: 5m}\n", 3, "resources.cpu", "5m: want at least 10m"},
		{"cpu a bool", base + "resources: {cpu: true}\n", 3, "resources.cpu", "true (a boolean): want cores"},
		{"port out of range", base + "ports: [{port: 70000}]\n", 3, "ports[0].port", "want a port number from 1 to 65535"},
		{"port missing", base + "ports:\n  - name: http\n", 4, "ports[0].port", "0: want a port number"},
		{"port item a number", base + "ports: [8080]\n", 3, "ports[0]", "want a mapping of fields, not 8080"},
		{"bad port name", base + "ports: [{name: -http, port: 80}]\n", 3, "ports[0].name", "want 1 to 15"},
		{"bad protocol", base + "ports: [{port: 80, protocol: sctp}]\n", 3, "ports[0].protocol", `"sctp": want tcp or udp`},
		{"duplicate port names", tcp8080 + "  - name: http\n    port: 8081\n", 5, "ports[1].name", `"http" is also the name of ports[0]`},
		{"duplicate port numbers", tcp8080 + "  - name: web\n    port: 8080\n", 6, "ports[1].port", "8080/tcp is also ports[0]"},
		{"same number, other protocol is fine but a third clashes", tcp8080 + "  - {port: 8080, protocol: udp}\n  - {port: 8080, protocol: udp}\n", 6, "ports[2].port", "8080/udp"},
		{"health port not declared", tcp8080 + "health:\n  http: /healthz\n  port: 9090\n", 7, "health.port", "9090 is not a tcp port declared"},
		{"health port name unknown", tcp8080 + "health:\n  tcp: true\n  port: admin\n", 7, "health.port", `no port named "admin"`},
		{"health port udp", base + "ports: [{name: dns, port: 53, protocol: udp}]\nhealth: {tcp: true, port: dns}\n", 4, "health.port", `"dns" is a udp port`},
		{"health without ports", base + "health: {tcp: true}\n", 3, "health.port", "no tcp port to check"},
		{"health with both http and tcp", tcp8080 + "health:\n  http: /healthz\n  tcp: true\n", 7, "health.tcp", "give http or tcp, not both"},
		{"health with neither", tcp8080 + "health:\n  interval: 1s\n", 5, "health", "no check"},
		{"health path relative", tcp8080 + "health: {http: healthz}\n", 5, "health.http", "want a path starting with /"},
		{"health timeout > interval", tcp8080 + "health:\n  tcp: true\n  interval: 1s\n  timeout: 2s\n", 8, "health.timeout", "2s is longer than the interval (1s)"},
		{"health interval too short", tcp8080 + "health: {tcp: true, interval: 10ms}\n", 5, "health.interval", "10ms: want 100ms to 1h"},
		{"bad duration 2", tcp8080 + "health:\n  tcp: true\n  interval: 2\n", 7, "health.interval", `"2" is not a duration: want a duration such as 2s`},
		{"bad duration word", tcp8080 + "health: {tcp: true, timeout: soon}\n", 5, "health.timeout", `"soon" is not a duration`},
		{"negative start period", tcp8080 + "health: {tcp: true, startPeriod: -1s}\n", 5, "health.startPeriod", "-1s: want 0s to 1h"},
		{"zero retries", tcp8080 + "health: {tcp: true, retries: 0}\n", 5, "health.retries", "0: want 1 to 100"},
		{"label value a number", base + "placement:\n  labels:\n    zone: 1\n", 5, "placement.labels.zone", "quote it"},
		{"bad label key", base + "placement: {labels: {\"a b\": c}}\n", 3, "placement.labels.a b", "not a label key"},
		{"spread yes", base + "placement: {spread: yes}\n", 3, "placement.spread", `"yes": want true or false`},
		{"update strategy yolo", base + "update:\n  strategy: yolo\n", 4, "update.strategy", `"yolo": want rolling, canary or blue-green`},
		{"canary without canary count", base + "replicas: 3\nupdate:\n  strategy: canary\n", 4, "update.canary", "required for the canary strategy"},
		{"canary > replicas", base + "replicas: 3\nupdate:\n  strategy: canary\n  canary: 4\n", 6, "update.canary", "4: want 1 to replicas (3)"},
		{"canary with rolling", base + "update: {canary: 1}\n", 3, "update.canary", "only for the canary strategy, not rolling"},
		{"promote with blue-green", base + "update: {strategy: blue-green, promote: auto}\n", 3, "update.promote", "only for the canary strategy"},
		{"bad promote", base + "update: {strategy: canary, canary: 1, promote: later}\n", 3, "update.promote", `"later": want manual or auto`},
		{"maxSurge with canary", base + "update:\n  strategy: canary\n  canary: 1\n  maxSurge: 2\n", 6, "update.maxSurge", "only for the rolling strategy, not canary"},
		{"maxSurge and maxUnavailable both 0", base + "update:\n  maxSurge: 0\n  maxUnavailable: 0\n", 4, "update.maxSurge", "both 0"},
		{"maxSurge 0 and the default", base + "update: {maxSurge: 0}\n", 3, "update.maxSurge", "both 0"},
		{"percent 150%", base + "update:\n  maxSurge: 150%\n", 4, "update.maxSurge", `"150%": want a percentage from 0% to 100%`},
		{"percent word", base + "update: {maxUnavailable: half}\n", 3, "update.maxUnavailable", "want a number or a percentage"},
		{"negative maxUnavailable", base + "update: {maxUnavailable: -1}\n", 3, "update.maxUnavailable", "-1: want 0 to 1000"},
		{"deadline too short", base + "update: {deadline: 10ms}\n", 3, "update.deadline", "want 1s to 24h"},
		{"bad restart", base + "restart: sometimes\n", 3, "restart", `"sometimes": want no, on-failure or always`},
		{"restart a bool", base + "restart: false\n", 3, "restart", "quote it"},
		{"volumes on two different nodes", base + "volumes:\n  - {node: n1, source: /a, target: /a}\n  - node: n2\n    source: /b\n    target: /b\n", 5, "volumes[1].node", `"n2": all volumes must be on one node, and volumes[0] is on "n1"`},
		{"volume without node", base + "volumes:\n  - source: /a\n    target: /a\n", 4, "volumes[0].node", "required"},
		{"relative volume source", base + "volumes:\n  - node: n1\n    source: data/web\n    target: /data\n", 5, "volumes[0].source", `"data/web": want a clean absolute host path`},
		{"unclean volume source", base + "volumes: [{node: n1, source: /a/../b, target: /data}]\n", 3, "volumes[0].source", "clean absolute"},
		{"volume source root", base + "volumes: [{node: n1, source: /, target: /data}]\n", 3, "volumes[0].source", "whole host"},
		{"volume target root", base + "volumes: [{node: n1, source: /a, target: /}]\n", 3, "volumes[0].target", "other than /"},
		{"duplicate volume targets", base + "volumes:\n  - {node: n1, source: /a, target: /data}\n  - {node: n1, source: /b, target: /data}\n", 5, "volumes[1].target", "also the target of volumes[0]"},
		{"singleton with replicas 3", base + "replicas: 3\nsingleton: true\n", 4, "singleton", "want replicas 0 or 1, not 3"},
		{"singleton with blue-green", base + "update:\n  strategy: blue-green\nsingleton: true\n", 5, "singleton", "want the rolling strategy, not blue-green"},
		{"singleton with maxSurge", base + "singleton: true\nupdate: {maxSurge: 1}\n", 4, "update.maxSurge", "a singleton never runs two copies"},
		{"singleton with maxUnavailable 0", base + "singleton: true\nupdate: {maxUnavailable: 0}\n", 4, "update.maxUnavailable", "a singleton cannot surge"},
		{"earliest line wins among checks", "name: web\nreplicas: -1\nimage: \"\"\n", 2, "replicas", "-1"},
		{"walk errors stop at the first in document order", base + "replicas: x\nresources: {memory: 12XB}\n", 3, "replicas", "want a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse([]byte(tt.yaml), "app.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", app)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v does not wrap errs.ErrInvalid", err)
			}
			if e.File != "app.yaml" || e.Line != tt.line || e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got  %q (line %d, field %q)\nwant line %d, field %q, message containing %q", err, e.Line, e.Field, tt.line, tt.field, tt.msg)
			}
			if app.Name != "" || app.Replicas != 0 || app.Health != nil {
				t.Errorf("Parse returned a partial App with its error: %+v", app)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "app.yaml", Line: 7, Field: "resources.memory", Msg: "bad"}, "app.yaml:7: resources.memory: bad"},
		{Error{File: "app.yaml", Field: "name", Msg: "required"}, "app.yaml: name: required"},
		{Error{Line: 3, Msg: "bad"}, "line 3: bad"},
		{Error{Field: "name", Msg: "required"}, "name: required"},
		{Error{Msg: "the spec is empty"}, "the spec is empty"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	_, err := Parse([]byte(base+"resources:\n  memory: 12XB\n"), "app.yaml")
	want := `app.yaml:4: resources.memory: "12XB" is not a size: want a number and a unit such as 256Mi, 1G or 512M`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestParseLimits(t *testing.T) {
	// The classic billion laughs: nine levels of ten aliases each.
	var lol strings.Builder
	lol.WriteString(base + "args: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&lol, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
			i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	lol.WriteString("command: *a8\n")
	// What the schema allows to grow: a list of aliases to one volume.
	wide := base + "volumes: [&v {node: n1, source: /a, target: /a}" + strings.Repeat(", *v", 2000) + "]\n"
	for name, spec := range map[string]string{"billion laughs": lol.String(), "wide aliases": wide} {
		start := time.Now()
		_, err := Parse([]byte(spec), "bomb.yaml")
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %s", name, d)
		}
	}
	_, err := Parse([]byte(wide), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "more than 10000 values") {
		t.Errorf("wide aliases: got %v, want the node limit", err)
	}
	_, err = Parse([]byte(base+"#"+strings.Repeat("x", MaxSpecBytes)), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "the limit is 1048576") {
		t.Errorf("oversized spec: got %v, want a refusal", err)
	}
}
