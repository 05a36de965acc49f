package spec

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Alerts are the app's own alert thresholds (package alert has the
// rules); a zero field takes the default.
type Alerts struct {
	// Memory: a replica using more than this percent of its memory limit
	// for a while is alerted (default 90).
	Memory int `json:"memory,omitempty"`
	// Restarts: a replica restarting this many times within an hour is
	// alerted (default 5).
	Restarts int `json:"restarts,omitempty"`
}

// MaxAlertRestarts bounds alerts.restarts.
const MaxAlertRestarts = 10000

func (p *parser) alerts(v *yaml.Node, path string) error {
	al := &p.app.Alerts
	return p.fields(v, path, []field{
		{"memory", func(v *yaml.Node, path string) error {
			n, err := percent(v, path)
			al.Memory = n
			return err
		}},
		{"restarts", p.toInt(&al.Restarts)},
	})
}

// percent decodes a percentage written as 80%.
func percent(v *yaml.Node, path string) (int, error) {
	const want = "a percentage of the memory limit such as 80%"
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		return 0, fieldErr(path, "%s: want %s", describe(v), want)
	}
	num, ok := strings.CutSuffix(v.Value, "%")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || strconv.Itoa(n) != num {
		return 0, fieldErr(path, "%q: want %s", v.Value, want)
	}
	return n, nil
}

func (c *checker) alerts(a Alerts) {
	if a.Memory < 0 || a.Memory > 100 || a.Memory != 0 && a.Memory < 10 {
		c.add("alerts.memory", "%d%%: want 10%% to 100%%", a.Memory)
	}
	if a.Restarts < 0 || a.Restarts > MaxAlertRestarts {
		c.add("alerts.restarts", "%d: want 1 to %d restarts within an hour", a.Restarts, MaxAlertRestarts)
	}
}
