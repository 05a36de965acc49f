package spec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// MaxSpecBytes is the largest spec Parse reads.
const MaxSpecBytes = 1 << 20

// Parse parses and validates a spec. filename is used in errors only.
//
// Every error is an *Error wrapping errs.ErrInvalid, and Parse reports one:
// the first that the strict reading of the document meets (YAML syntax,
// unknown fields, wrong types, values that do not parse), in document order;
// or, when the document reads cleanly, the earliest by line among the
// checks that relate fields to each other. It never returns a partly valid
// App: on error the App is the zero value.
func Parse(data []byte, filename string) (App, error) {
	app, err := parse(data)
	if err != nil {
		err.File = filename
		return App{}, err
	}
	return app, nil
}

func parse(data []byte) (App, *Error) {
	if len(data) > MaxSpecBytes {
		return App{}, &Error{Msg: fmt.Sprintf("the spec is %d bytes: the limit is %d (1 MiB)", len(data), MaxSpecBytes)}
	}
	root, err := document(data)
	if err != nil {
		return App{}, err
	}
	p := &parser{decoder: decoder{lines: map[string]int{"": root.Line}}, app: defaults()}
	if err := p.fields(root, "", p.top()); err != nil {
		return App{}, p.locate(asError(err))
	}
	problems := p.resolve()
	problems = append(problems, p.app.check()...)
	if len(problems) > 0 {
		for _, e := range problems {
			p.locate(e)
		}
		return App{}, slices.MinFunc(problems, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	}
	return p.app, nil
}

// document reads the one YAML document in data and returns its top-level
// mapping.
func document(data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &Error{Msg: "the spec is empty: want at least name: and image:"}
	} else if err != nil {
		return nil, syntaxErr(err, data)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &Error{Line: next.Line, Msg: "a second YAML document: a spec holds one app"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxErr(err, data)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Line: doc.Line, Msg: "not a YAML document"}
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
		return root, nil
	case isNull(root):
		return nil, &Error{Line: root.Line, Msg: "the spec is empty: want at least name: and image:"}
	}
	return nil, &Error{Line: root.Line, Msg: fmt.Sprintf("the spec is %s: want a mapping of fields (name: ..., image: ...)", describe(root))}
}

// asError turns what the walk returned into an *Error. The walk returns
// only *Error, so the fallback never loses a field it knew.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Msg: err.Error()}
}

// locate fills in the line of an error that names only its field.
func (p *parser) locate(e *Error) *Error {
	if e.Line == 0 {
		e.Line = pathLine(p.lines, e.Field)
	}
	return e
}

// resolve computes what depends on the whole document: the health check's
// port and timeout, the update's surge and unavailability.
func (p *parser) resolve() []*Error {
	var out []*Error
	for _, err := range []*Error{p.resolveAutoscale(), p.resolveHealth(), p.resolveUpdate(), p.resolveIngress()} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

func (p *parser) resolveHealth() *Error {
	h, r := p.app.Health, p.health
	if h == nil {
		return nil
	}
	if !p.given("health.timeout") {
		h.Timeout = min(h.Timeout, h.Interval)
	}
	if r.port != nil && r.port.name == "" {
		h.Port = r.port.num
		return nil
	}
	for _, port := range p.app.Ports {
		switch {
		case r.port == nil && port.Protocol == ProtoTCP:
			h.Port = port.Port
			return nil
		case r.port != nil && port.Name == r.port.name && port.Protocol != ProtoTCP:
			return fieldErr("health.port", "%q is a %s port: a health check needs a tcp port", port.Name, port.Protocol)
		case r.port != nil && port.Name == r.port.name:
			h.Port = port.Port
			return nil
		}
	}
	if r.port == nil {
		return fieldErr("health.port", "no tcp port to check: declare one under ports")
	}
	return fieldErr("health.port", "no port named %q under ports", r.port.name)
}

func (p *parser) resolveUpdate() *Error {
	u, replicas := &p.app.Update, min(max(p.app.Replicas, 0), MaxReplicas)
	if len(p.app.Ingress) > 0 && !p.given("update.drain") {
		u.Drain = DefaultDrain
	}
	if u.Strategy == StrategyCanary && u.Promote == "" && !p.given("update.promote") {
		u.Promote = PromoteManual
	}
	if u.Strategy != StrategyRolling {
		for _, f := range []string{"update.maxSurge", "update.maxUnavailable"} {
			if p.given(f) {
				return fieldErr(f, "only for the rolling strategy, not %s", u.Strategy)
			}
		}
		return nil
	}
	surge, unavail := DefaultMaxSurge, 0
	if p.surge != nil {
		surge = p.surge.of(replicas, true)
	}
	if p.unavail != nil {
		unavail = p.unavail.of(replicas, false)
	}
	if p.app.Singleton {
		if surge != 0 && p.surge != nil {
			return fieldErr("update.maxSurge", "a singleton never runs two copies: leave maxSurge out or set it to 0")
		}
		surge = 0
		if p.unavail == nil {
			unavail = 1
		}
	}
	if surge == 0 && unavail == 0 && (p.surge.roundedToZero() || p.unavail.roundedToZero()) {
		// A percentage of few replicas came to nothing: still make progress.
		if p.app.Singleton {
			unavail = 1
		} else {
			surge = 1
		}
	}
	u.MaxSurge, u.MaxUnavailable = surge, unavail
	return nil
}

// of resolves v against replicas: a percentage rounded up or down.
func (v *intOrPercent) of(replicas int, up bool) int {
	if !v.percent {
		return v.n
	}
	n := v.n * replicas
	if up {
		return (n + 99) / 100
	}
	return n / 100
}

// roundedToZero reports whether v is a non-zero percentage of too few replicas.
func (v *intOrPercent) roundedToZero() bool {
	return v != nil && v.percent && v.n > 0
}
