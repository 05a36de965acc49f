package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the values a spec may hold, counting an alias each time it
// is used, so that an alias bomb cannot make the walk expensive.
const maxNodes = 10000

// decoder walks a yaml.Node tree strictly: only known fields, one type per
// field, no duplicate keys. It records the line of every field path it
// visits so that later checks can say where a value came from.
type decoder struct {
	lines map[string]int
	nodes int
}

// setter stores the value at path; it is called with aliases resolved.
type setter func(v *yaml.Node, path string) error

type field struct {
	name string
	set  setter
}

// visit counts a node and follows it if it is an alias.
func (d *decoder) visit(n *yaml.Node, path string) (*yaml.Node, error) {
	d.nodes++
	if d.nodes > maxNodes {
		return nil, &Error{Line: n.Line, Field: path, Msg: fmt.Sprintf("the spec holds more than %d values (each use of an alias counts)", maxNodes)}
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n, nil
}

// line is where the value of a field is: a scalar's (or alias's) own line,
// a block collection's key line.
func line(k, v *yaml.Node) int {
	if v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode {
		return v.Line
	}
	return k.Line
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pairs calls fn for each entry of a mapping, in document order, with the
// value's path. A null value counts as absent.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, v *yaml.Node, path string) error) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fieldErr(path, "want a mapping of fields, not %s", describe(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := d.visit(n.Content[i], path)
		if err != nil {
			return err
		}
		kl := n.Content[i].Line // where the key is written, even if it is an alias
		if k.Kind != yaml.ScalarNode {
			return &Error{Line: kl, Field: path, Msg: "a key must be a plain name, not " + describe(k)}
		}
		p := join(path, k.Value)
		if k.ShortTag() == "!!merge" {
			return &Error{Line: kl, Field: path, Msg: "merge keys (<<) are not supported: write the fields out"}
		}
		if prev, dup := seen[k.Value]; dup {
			return &Error{Line: kl, Field: p, Msg: fmt.Sprintf("given twice (first on line %d)", prev)}
		}
		seen[k.Value] = kl
		d.lines[p] = line(n.Content[i], n.Content[i+1])
		v, err := d.visit(n.Content[i+1], p)
		if err != nil {
			return err
		}
		if err := fn(k.Value, v, p); err != nil {
			return err
		}
	}
	return nil
}

// fields decodes a mapping whose keys must be among fields.
func (d *decoder) fields(n *yaml.Node, path string, fields []field) error {
	return d.pairs(n, path, func(key string, v *yaml.Node, p string) error {
		for _, f := range fields {
			if f.name == key {
				return f.set(v, p)
			}
		}
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.name
		}
		return fieldErr(p, "unknown field: want one of %s", strings.Join(names, ", "))
	})
}

// items calls fn for each element of a sequence. A null counts as empty.
func (d *decoder) items(n *yaml.Node, path string, fn func(i int, v *yaml.Node, path string) error) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fieldErr(path, "want a list, not %s", describe(n))
	}
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		v, err := d.visit(item, p)
		if err != nil {
			return err
		}
		if err := fn(i, v, p); err != nil {
			return err
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an unexpected YAML node"
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "no value"
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int", "!!float":
		return n.Value + " (a number)"
	case "!!bool":
		return n.Value + " (a boolean)"
	case "!!timestamp":
		return n.Value + " (a date)"
	default:
		return fmt.Sprintf("%q (tagged %s)", n.Value, tag)
	}
}

// str decodes a string. Unquoted numbers, booleans and dates are refused
// rather than converted: the operator is told to quote them.
func str(v *yaml.Node, path string) (string, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
		return v.Value, nil
	case v.Kind == yaml.ScalarNode && !isNull(v) && v.Style&yaml.TaggedStyle == 0:
		return "", fieldErr(path, "%s: want a string: quote it (%q)", describe(v), v.Value)
	}
	return "", fieldErr(path, "%s: want a string", describe(v))
}

// integer decodes a whole number written without quotes.
func integer(v *yaml.Node, path string) (int, error) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		if _, err := strconv.Atoi(v.Value); err == nil && v.Kind == yaml.ScalarNode {
			return 0, fieldErr(path, "%s is a string: want a number, without quotes", describe(v))
		}
		return 0, fieldErr(path, "%s: want a whole number", describe(v))
	}
	var n int
	if err := v.Decode(&n); err != nil {
		return 0, fieldErr(path, "%s is out of range", v.Value)
	}
	return n, nil
}

func boolean(v *yaml.Node, path string) (bool, error) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		return false, fieldErr(path, "%s: want true or false", describe(v))
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		return false, fieldErr(path, "%s: want true or false", describe(v))
	}
	return b, nil
}

// text is a scalar's text, for values with their own syntax (sizes, CPU,
// durations) that may arrive as YAML strings or numbers.
func text(v *yaml.Node, path, want string) (string, error) {
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float":
		if v.Kind == yaml.ScalarNode {
			return v.Value, nil
		}
	}
	return "", fieldErr(path, "%s: want %s", describe(v), want)
}

func duration(v *yaml.Node, path string) (time.Duration, error) {
	const want = "a duration such as 2s, 500ms or 1m30s"
	s, err := text(v, path, want)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fieldErr(path, "%q is not a duration: want %s", s, want)
	}
	return d, nil
}

func (d *decoder) strList(v *yaml.Node, path string) ([]string, error) {
	var out []string
	err := d.items(v, path, func(_ int, item *yaml.Node, p string) error {
		s, err := str(item, p)
		out = append(out, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *decoder) strMap(v *yaml.Node, path string) (map[string]string, error) {
	var out map[string]string
	err := d.pairs(v, path, func(key string, item *yaml.Node, p string) error {
		s, err := str(item, p)
		if out == nil {
			out = map[string]string{}
		}
		out[key] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Setters that store into a destination, for field tables.

func (d *decoder) toStr(dst *string) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = str(v, p); return err }
}

func (d *decoder) toInt(dst *int) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = integer(v, p); return err }
}

func (d *decoder) toBool(dst *bool) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = boolean(v, p); return err }
}

func (d *decoder) toDuration(dst *time.Duration) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = duration(v, p); return err }
}

func (d *decoder) toList(dst *[]string) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = d.strList(v, p); return err }
}

func (d *decoder) toMap(dst *map[string]string) setter {
	return func(v *yaml.Node, p string) (err error) { *dst, err = d.strMap(v, p); return err }
}
