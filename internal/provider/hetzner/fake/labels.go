package fake

import (
	"errors"
	"fmt"
	"strings"
)

// Labels as the API reference has them: a key is an optional DNS-subdomain
// prefix and "/", then a name of 1-63 characters; a value is 0-63
// characters; names and values are letters and digits with '-', '_', '.'
// inside.
func validLabelName(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && ((c != '-' && c != '_' && c != '.') || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

func validLabelValue(s string) bool { return validLabelName(s) }

func validLabelKey(k string) bool {
	prefix, name, has := strings.Cut(k, "/")
	if !has {
		name, prefix = k, ""
	} else if prefix == "" || len(prefix) > 253 || !validDNS(prefix) {
		return false
	}
	return name != "" && validLabelName(name)
}

func validDNS(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validHostname: RFC 1123 labels, 253 characters at most.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

type op int

const (
	opEq op = iota
	opNe
	opExists
	opNotExists
	opIn
	opNotIn
)

type requirement struct {
	key    string
	op     op
	values []string
}

// selector is a parsed label_selector: every requirement must hold.
type selector []requirement

func (s selector) matches(labels map[string]string) bool {
	for _, r := range s {
		v, has := labels[r.key]
		switch r.op {
		case opEq:
			if !has || v != r.values[0] {
				return false
			}
		case opNe:
			if has && v == r.values[0] {
				return false
			}
		case opExists:
			if !has {
				return false
			}
		case opNotExists:
			if has {
				return false
			}
		case opIn:
			if !has || !contains(r.values, v) {
				return false
			}
		case opNotIn:
			if has && contains(r.values, v) {
				return false
			}
		}
	}
	return true
}

func contains(a []string, s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// parseSelector reads a label selector as the reference describes it:
// comma-separated k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b).
func parseSelector(s string) (selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > 4096 {
		return nil, errors.New("too long")
	}
	var exprs []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
			if depth > 1 {
				return nil, errors.New("nested parentheses")
			}
		case ')':
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced parentheses")
			}
		case ',':
			if depth == 0 {
				exprs = append(exprs, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced parentheses")
	}
	exprs = append(exprs, s[start:])
	var out selector
	for _, e := range exprs {
		r, err := parseRequirement(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRequirement(e string) (requirement, error) {
	key := func(k string) (string, error) {
		k = strings.TrimSpace(k)
		if !validLabelKey(k) {
			return "", fmt.Errorf("invalid key %q", k)
		}
		return k, nil
	}
	value := func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if !validLabelValue(v) {
			return "", fmt.Errorf("invalid value %q", v)
		}
		return v, nil
	}
	if e == "" {
		return requirement{}, errors.New("empty expression")
	}
	if k, v, ok := strings.Cut(e, "!="); ok {
		kk, err := key(k)
		if err != nil {
			return requirement{}, err
		}
		vv, err := value(v)
		return requirement{kk, opNe, []string{vv}}, err
	}
	if k, v, ok := strings.Cut(e, "=="); ok {
		e = k + "=" + v
	}
	if k, v, ok := strings.Cut(e, "="); ok {
		kk, err := key(k)
		if err != nil {
			return requirement{}, err
		}
		vv, err := value(v)
		return requirement{kk, opEq, []string{vv}}, err
	}
	if strings.HasSuffix(e, ")") {
		open := strings.IndexByte(e, '(')
		if open < 0 {
			return requirement{}, errors.New("')' without '('")
		}
		head := strings.Fields(e[:open])
		if len(head) != 2 || (head[1] != "in" && head[1] != "notin") {
			return requirement{}, errors.New("want KEY in (...) or KEY notin (...)")
		}
		kk, err := key(head[0])
		if err != nil {
			return requirement{}, err
		}
		var vals []string
		for _, v := range strings.Split(e[open+1:len(e)-1], ",") {
			vv, err := value(v)
			if err != nil {
				return requirement{}, err
			}
			vals = append(vals, vv)
		}
		o := opIn
		if head[1] == "notin" {
			o = opNotIn
		}
		return requirement{kk, o, vals}, nil
	}
	if k, ok := strings.CutPrefix(e, "!"); ok {
		kk, err := key(k)
		return requirement{kk, opNotExists, nil}, err
	}
	kk, err := key(e)
	return requirement{kk, opExists, nil}, err
}
