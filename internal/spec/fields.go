package spec

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/moatcloud/moat/internal/quantity"
)

// parser decodes one spec: the App with defaults, overwritten by what the
// document says, plus the values that can be resolved only once the whole
// document is read (port names, percentages, defaults that depend on other
// fields).
type parser struct {
	decoder
	app     App
	health  *rawHealth
	surge   *intOrPercent // update.maxSurge as written
	unavail *intOrPercent // update.maxUnavailable as written
	// ingressPorts: each ingress route's port as written; nil when none.
	ingressPorts []*portRef
}

type rawHealth struct {
	http, tcp bool
	port      *portRef
}

// portRef is health.port as written: a port's name or its number.
type portRef struct {
	name string
	num  int
}

type intOrPercent struct {
	n       int
	percent bool
}

// given reports whether the document set the field at path.
func (p *parser) given(path string) bool {
	_, ok := p.lines[path]
	return ok
}

func (p *parser) top() []field {
	a := &p.app
	return []field{
		{"name", p.toStr(&a.Name)},
		{"image", p.toStr(&a.Image)},
		{"replicas", p.toInt(&a.Replicas)},
		{"command", p.toList(&a.Command)},
		{"args", p.toList(&a.Args)},
		{"env", p.toMap(&a.Env)},
		{"resources", p.resources},
		{"ports", p.ports},
		{"health", p.healthCheck},
		{"placement", p.placement},
		{"update", p.update},
		{"restart", p.toStr(&a.Restart)},
		{"volumes", p.volumes},
		{"singleton", p.toBool(&a.Singleton)},
		{"security", p.security},
		{"secrets", p.secrets},
		{"links", p.links},
		{"ingress", p.ingress},
		{"alerts", p.alerts},
		{"autoscale", p.autoscale},
	}
}

func (p *parser) resources(v *yaml.Node, path string) error {
	r := &p.app.Resources
	return p.fields(v, path, []field{
		{"cpu", func(v *yaml.Node, path string) error {
			return parseQuantity(v, path, "cores (0.5) or millicores (500m)", quantity.ParseMilliCPU, &r.MilliCPU)
		}},
		{"memory", func(v *yaml.Node, path string) error {
			return parseQuantity(v, path, "a size such as 128Mi", quantity.ParseBytes, &r.MemoryBytes)
		}},
	})
}

func parseQuantity(v *yaml.Node, path, want string, parse func(string) (int64, error), dst *int64) error {
	s, err := text(v, path, want)
	if err != nil {
		return err
	}
	if *dst, err = parse(s); err != nil {
		return fieldErr(path, "%s", err.Error())
	}
	return nil
}

func (p *parser) ports(v *yaml.Node, path string) error {
	return p.items(v, path, func(_ int, item *yaml.Node, path string) error {
		port := Port{Protocol: ProtoTCP}
		err := p.fields(item, path, []field{
			{"name", p.toStr(&port.Name)},
			{"port", p.toInt(&port.Port)},
			{"protocol", p.toStr(&port.Protocol)},
		})
		p.app.Ports = append(p.app.Ports, port)
		return err
	})
}

func (p *parser) healthCheck(v *yaml.Node, path string) error {
	if isNull(v) {
		return nil
	}
	h := &Health{Interval: DefaultInterval, Timeout: DefaultTimeout, Retries: DefaultRetries}
	r := &rawHealth{}
	p.app.Health, p.health = h, r
	err := p.fields(v, path, []field{
		{"http", func(v *yaml.Node, path string) (err error) {
			if h.HTTPPath, err = str(v, path); err != nil {
				return err
			}
			if !strings.HasPrefix(h.HTTPPath, "/") {
				return fieldErr(path, "%q: want a path starting with /, such as /healthz", h.HTTPPath)
			}
			r.http = true
			return nil
		}},
		{"tcp", p.toBool(&r.tcp)},
		{"port", func(v *yaml.Node, path string) (err error) {
			r.port = &portRef{}
			r.port.name, r.port.num, err = nameOrNumber(v, path)
			return err
		}},
		{"interval", p.toDuration(&h.Interval)},
		{"timeout", p.toDuration(&h.Timeout)},
		{"startPeriod", p.toDuration(&h.StartPeriod)},
		{"retries", p.toInt(&h.Retries)},
	})
	switch {
	case err != nil:
		return err
	case r.http && r.tcp:
		return fieldErr(path+".tcp", "give http or tcp, not both")
	case !r.http && !r.tcp:
		return fieldErr(path, "no check: want http: /path or tcp: true")
	}
	return nil
}

// nameOrNumber decodes a port given by name (a string) or number.
func nameOrNumber(v *yaml.Node, path string) (string, int, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int":
		n, err := integer(v, path)
		return "", n, err
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "":
		return v.Value, 0, nil
	}
	return "", 0, fieldErr(path, "%s: want a port's name or number", describe(v))
}

func (p *parser) placement(v *yaml.Node, path string) error {
	pl := &p.app.Placement
	rebalance := true
	err := p.fields(v, path, []field{
		{"labels", p.toMap(&pl.Labels)},
		{"spread", p.toBool(&pl.Spread)},
		{"rebalance", p.toBool(&rebalance)},
	})
	pl.NoRebalance = !rebalance
	return err
}

func (p *parser) update(v *yaml.Node, path string) error {
	u := &p.app.Update
	return p.fields(v, path, []field{
		{"strategy", p.toStr(&u.Strategy)},
		{"maxSurge", toIntOrPercent(&p.surge)},
		{"maxUnavailable", toIntOrPercent(&p.unavail)},
		{"canary", p.toInt(&u.Canary)},
		{"promote", p.toStr(&u.Promote)},
		{"deadline", p.toDuration(&u.Deadline)},
		{"drain", p.toDuration(&u.Drain)},
	})
}

func toIntOrPercent(dst **intOrPercent) setter {
	return func(v *yaml.Node, path string) error {
		var want = "a number or a percentage of replicas such as 25%"
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
			num, ok := strings.CutSuffix(v.Value, "%")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || strconv.Itoa(n) != num {
				return fieldErr(path, "%q: want %s", v.Value, want)
			}
			if n < 0 || n > 100 {
				return fieldErr(path, "%q: want a percentage from 0%% to 100%%", v.Value)
			}
			*dst = &intOrPercent{n: n, percent: true}
			return nil
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			return fieldErr(path, "%s: want %s", describe(v), want)
		}
		n, err := integer(v, path)
		*dst = &intOrPercent{n: n}
		return err
	}
}

func (p *parser) volumes(v *yaml.Node, path string) error {
	return p.items(v, path, func(_ int, item *yaml.Node, path string) error {
		var vol Volume
		err := p.fields(item, path, []field{
			{"node", p.toStr(&vol.Node)},
			{"source", p.toStr(&vol.Source)},
			{"target", p.toStr(&vol.Target)},
			{"readOnly", p.toBool(&vol.ReadOnly)},
		})
		p.app.Volumes = append(p.app.Volumes, vol)
		return err
	})
}

func (p *parser) security(v *yaml.Node, path string) error {
	return p.fields(v, path, []field{
		{"drop", p.toList(&p.app.Security.Drop)},
	})
}
