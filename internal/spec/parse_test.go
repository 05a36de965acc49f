package spec

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// minimal is the App that "name: web\nimage: hello:1" parses to: every default.
func minimal() App {
	return App{
		Name:      "web",
		Image:     "hello:1",
		Replicas:  1,
		Resources: Resources{MilliCPU: 250, MemoryBytes: 128 << 20},
		Placement: Placement{Spread: true},
		Update:    Update{Strategy: "rolling", MaxSurge: 1, MaxUnavailable: 0, Deadline: 2 * time.Minute},
		Restart:   "always",
	}
}

func with(f func(*App)) App {
	a := minimal()
	f(&a)
	return a
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want App
	}{
		{"defaults", "name: web\nimage: hello:1\n", minimal()},
		{"everything", `
name: web
image: hello:1
replicas: 3
command: [/hello]
args: [--verbose, "-x"]
env:
  LOG_LEVEL: debug
  PORT: "8080"
resources:
  cpu: 500m
  memory: 256Mi
ports:
  - name: http
    port: 8080
  - name: dns
    port: 53
    protocol: udp
health:
  http: /healthz
  port: http
  interval: 5s
  timeout: 1500ms
  startPeriod: 1m30s
  retries: 5
placement:
  labels: {zone: a, disk: ssd}
  spread: false
update:
  strategy: rolling
  maxSurge: 2
  maxUnavailable: 1
  deadline: 5m
restart: on-failure
`, App{
			Name: "web", Image: "hello:1", Replicas: 3,
			Command: []string{"/hello"}, Args: []string{"--verbose", "-x"},
			Env:       map[string]string{"LOG_LEVEL": "debug", "PORT": "8080"},
			Resources: Resources{MilliCPU: 500, MemoryBytes: 256 << 20},
			Ports:     []Port{{Name: "http", Port: 8080, Protocol: "tcp"}, {Name: "dns", Port: 53, Protocol: "udp"}},
			Health: &Health{HTTPPath: "/healthz", Port: 8080, Interval: 5 * time.Second, Timeout: 1500 * time.Millisecond,
				StartPeriod: 90 * time.Second, Retries: 5},
			Placement: Placement{Labels: map[string]string{"zone": "a", "disk": "ssd"}, Spread: false},
			Update:    Update{Strategy: "rolling", MaxSurge: 2, MaxUnavailable: 1, Deadline: 5 * time.Minute},
			Restart:   "on-failure",
		}},
		{"tcp health defaults to the first tcp port", `
name: web
image: hello:1
ports: [{port: 53, protocol: udp}, {port: 9000}, {port: 9001}]
health: {tcp: true}
`, with(func(a *App) {
			a.Ports = []Port{{Port: 53, Protocol: "udp"}, {Port: 9000, Protocol: "tcp"}, {Port: 9001, Protocol: "tcp"}}
			a.Health = &Health{Port: 9000, Interval: 2 * time.Second, Timeout: time.Second, Retries: 3}
		})},
		{"health port by number, timeout follows a short interval", `
name: web
image: hello:1
ports: [{port: 9000}, {port: 9001}]
health: {http: /, port: 9001, interval: 500ms, tcp: false}
`, with(func(a *App) {
			a.Ports = []Port{{Port: 9000, Protocol: "tcp"}, {Port: 9001, Protocol: "tcp"}}
			a.Health = &Health{HTTPPath: "/", Port: 9001, Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Retries: 3}
		})},
		{"cores, plain bytes, zero replicas, restart no", `
name: batch-1
image: sha256:0123abcd
replicas: 0
resources: {cpu: 2, memory: 134217728}
restart: no
`, with(func(a *App) {
			a.Name, a.Image, a.Replicas = "batch-1", "sha256:0123abcd", 0
			a.Resources = Resources{MilliCPU: 2000, MemoryBytes: 128 << 20}
			a.Restart = "no"
		})},
		{"fractional cores, binary G", "name: web\nimage: hello:1\nresources: {cpu: 0.5, memory: 1G}\n", with(func(a *App) {
			a.Resources = Resources{MilliCPU: 500, MemoryBytes: 1 << 30}
		})},
		{"percentages resolve against replicas", `
name: web
image: hello:1
replicas: 10
update: {maxSurge: 25%, maxUnavailable: "25%"}
`, with(func(a *App) {
			a.Replicas = 10
			a.Update.MaxSurge, a.Update.MaxUnavailable = 3, 2
		})},
		{"a percentage that rounds to nothing still makes progress", `
name: web
image: hello:1
replicas: 3
update: {maxSurge: 0, maxUnavailable: 10%}
`, with(func(a *App) {
			a.Replicas = 3
			a.Update.MaxSurge, a.Update.MaxUnavailable = 1, 0
		})},
		{"canary", `
name: api
image: api:2
replicas: 4
update:
  strategy: canary
  canary: 1
  deadline: 10m
`, with(func(a *App) {
			a.Name, a.Image, a.Replicas = "api", "api:2", 4
			a.Update = Update{Strategy: "canary", Canary: 1, Promote: "manual", Deadline: 10 * time.Minute}
		})},
		{"canary promoted automatically", "name: api\nimage: api:2\nreplicas: 2\nupdate: {strategy: canary, canary: 2, promote: auto}\n", with(func(a *App) {
			a.Name, a.Image, a.Replicas = "api", "api:2", 2
			a.Update = Update{Strategy: "canary", Canary: 2, Promote: "auto", Deadline: 2 * time.Minute}
		})},
		{"blue-green", "name: web\nimage: hello:1\nupdate: {strategy: blue-green, deadline: 1s}\n", with(func(a *App) {
			a.Update = Update{Strategy: "blue-green", Deadline: time.Second}
		})},
		{"singleton with a volume", `
name: db
image: postgres:16
singleton: true
volumes:
  - node: n1
    source: /var/lib/moat/volumes/db
    target: /var/lib/postgresql/data
  - {node: n1, source: /etc/db, target: /etc/db, readOnly: true}
`, with(func(a *App) {
			a.Name, a.Image, a.Singleton = "db", "postgres:16", true
			a.Update.MaxSurge, a.Update.MaxUnavailable = 0, 1
			a.Volumes = []Volume{
				{Node: "n1", Source: "/var/lib/moat/volumes/db", Target: "/var/lib/postgresql/data"},
				{Node: "n1", Source: "/etc/db", Target: "/etc/db", ReadOnly: true},
			}
		})},
		{"empty sections count as absent", "name: web\nimage: hello:1\nenv:\nhealth:\nports: []\ncommand: []\nplacement: {labels: {}}\nupdate:\n", minimal()},
		{"anchors and aliases", `
name: web
image: &img hello:1
command: [*img]
env: &e {A: "1"}
placement: {labels: *e}
`, with(func(a *App) {
			a.Command = []string{"hello:1"}
			a.Env = map[string]string{"A": "1"}
			a.Placement.Labels = map[string]string{"A": "1"}
		})},
		{"explicit tags and a document marker", "---\nname: !!str web\nimage: hello:1\nreplicas: !!int 2\n...\n", with(func(a *App) { a.Replicas = 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), "app.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
		})
	}
}

func TestPinnedNode(t *testing.T) {
	if n := minimal().PinnedNode(); n != "" {
		t.Errorf("PinnedNode without volumes = %q, want empty", n)
	}
	a := with(func(a *App) { a.Volumes = []Volume{{Node: "n2", Source: "/srv", Target: "/data"}} })
	if n := a.PinnedNode(); n != "n2" {
		t.Errorf("PinnedNode = %q, want n2", n)
	}
}
