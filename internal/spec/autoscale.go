package spec

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Autoscale hands the app's replica count to the master's app autoscaler
// (package appscale): it keeps the count between Min and Max so that each
// replica uses about CPU percent of its CPU (resources.cpu, which it
// reserves and is limited to) and serves about RPS requests a second
// through the edges; with both, the larger count wins. Replicas is then
// only the starting count (default Min): a later deploy keeps the count
// the autoscaler reached, and moat scale is refused.
type Autoscale struct {
	Min int     `json:"min"`
	Max int     `json:"max"`
	CPU int     `json:"cpu,omitempty"` // percent of resources.cpu per replica; 0: not a target
	RPS float64 `json:"rps,omitempty"` // requests per second per replica; 0: not a target
}

// Autoscale bounds.
const (
	MinAutoscaleCPU = 5
	MaxAutoscaleCPU = 95 // a replica is limited to its CPU: at 100 % it could never look busier
	MaxAutoscaleRPS = 1e6
)

func (p *parser) autoscale(v *yaml.Node, path string) error {
	if isNull(v) {
		return nil
	}
	as := &Autoscale{Min: 1}
	p.app.Autoscale = as
	return p.fields(v, path, []field{
		{"min", p.toInt(&as.Min)},
		{"max", p.toInt(&as.Max)},
		{"cpu", func(v *yaml.Node, path string) (err error) {
			as.CPU, err = cpuPercent(v, path)
			return err
		}},
		{"rps", func(v *yaml.Node, path string) (err error) {
			as.RPS, err = rate(v, path)
			return err
		}},
	})
}

// cpuPercent decodes a percentage of the replica's CPU written as 70%.
func cpuPercent(v *yaml.Node, path string) (int, error) {
	const want = "a percentage of each replica's CPU (resources.cpu) such as 70%"
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

// rate decodes a positive number of requests per second.
func rate(v *yaml.Node, path string) (float64, error) {
	const want = "requests per second per replica, a number such as 50 or 2.5"
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") {
		return 0, fieldErr(path, "%s: want %s", describe(v), want)
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fieldErr(path, "%q: want %s", v.Value, want)
	}
	return f, nil
}

// resolveAutoscale makes the starting count min when replicas is not
// given.
func (p *parser) resolveAutoscale() *Error {
	if as := p.app.Autoscale; as != nil && !p.given("replicas") && as.Min >= 1 && as.Min <= MaxReplicas {
		p.app.Replicas = as.Min
	}
	return nil
}

func (c *checker) autoscale(a App) {
	as := a.Autoscale
	if as == nil {
		return
	}
	switch {
	case as.Min < 1:
		c.add("autoscale.min", "%d: want at least 1 (moat does not scale to zero: nothing would answer the first request)", as.Min)
	case as.Min > MaxReplicas:
		c.add("autoscale.min", "%d: want at most %d", as.Min, MaxReplicas)
	}
	switch {
	case as.Max == 0:
		c.add("autoscale.max", "required: the most replicas the autoscaler may run")
	case as.Max < as.Min || as.Max > MaxReplicas:
		c.add("autoscale.max", "%d: want min (%d) to %d", as.Max, as.Min, MaxReplicas)
	}
	if as.CPU != 0 && (as.CPU < MinAutoscaleCPU || as.CPU > MaxAutoscaleCPU) {
		c.add("autoscale.cpu", "%d%%: want %d%% to %d%%", as.CPU, MinAutoscaleCPU, MaxAutoscaleCPU)
	}
	switch {
	case math.IsNaN(as.RPS) || as.RPS < 0 || as.RPS > MaxAutoscaleRPS:
		c.add("autoscale.rps", "%g: want more than 0, at most %g", as.RPS, float64(MaxAutoscaleRPS))
	case as.RPS > 0 && len(a.Ingress) == 0:
		c.add("autoscale.rps", "needs ingress: requests are counted by the edges' routes")
	}
	switch {
	case as.CPU == 0 && as.RPS == 0:
		c.add("autoscale", "no target: want cpu (such as 70%%) or rps (requests per second per replica), or both")
	case a.Singleton:
		c.add("autoscale", "a singleton runs at most one copy: it cannot be autoscaled")
	case as.Min >= 1 && as.Min <= as.Max && (a.Replicas < as.Min || a.Replicas > as.Max):
		c.add("replicas", "%d is outside autoscale's %d to %d: leave it out to start at min", a.Replicas, as.Min, as.Max)
	}
}
