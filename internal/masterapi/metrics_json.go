package masterapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// A history holds three numbers per field and step (a year at one hour,
// hundreds of thousands): encoding/json would call Value's methods through
// reflection once each and check every result. Metrics writes and reads
// its avg/min/max arrays itself; the JSON is the same.

// metricsJSON is Metrics with the value arrays left raw.
type metricsJSON struct {
	Kind   string          `json:"kind"`
	Name   string          `json:"name"`
	Step   float64         `json:"step"`
	Times  []int64         `json:"times"`
	Fields json.RawMessage `json:"fields"`
	Avg    json.RawMessage `json:"avg"`
	Min    json.RawMessage `json:"min"`
	Max    json.RawMessage `json:"max"`
}

// MarshalJSON writes m as its fields' tags say, null for an unknown value.
func (m Metrics) MarshalJSON() ([]byte, error) {
	fields, err := json.Marshal(m.Fields)
	if err != nil {
		return nil, err
	}
	return json.Marshal(metricsJSON{Kind: m.Kind, Name: m.Name, Step: m.Step, Times: m.Times, Fields: fields,
		Avg: appendRows(nil, m.Avg), Min: appendRows(nil, m.Min), Max: appendRows(nil, m.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	var raw metricsJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := Metrics{Kind: raw.Kind, Name: raw.Name, Step: raw.Step, Times: raw.Times}
	if len(raw.Fields) > 0 {
		if err := json.Unmarshal(raw.Fields, &out.Fields); err != nil {
			return err
		}
	}
	var err error
	for _, f := range []struct {
		name string
		raw  []byte
		dst  *[][]Value
	}{{"avg", raw.Avg, &out.Avg}, {"min", raw.Min, &out.Min}, {"max", raw.Max, &out.Max}} {
		if *f.dst, err = parseRows(f.raw); err != nil {
			return fmt.Errorf("metrics %s: %w", f.name, err)
		}
	}
	*m = out
	return nil
}

func appendRows(b []byte, rows [][]Value) []byte {
	if rows == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		if row == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendFloat(b, f, 'g', -1, 64)
			}
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

// parseRows reads an array of arrays of numbers or nulls (a valid JSON
// value already: the decoder checked it). Anything else is an error.
func parseRows(b []byte) ([][]Value, error) {
	p := rowParser{b: b}
	if len(b) == 0 || p.null() {
		return nil, p.end()
	}
	if !p.take('[') {
		return nil, p.fail("an array")
	}
	rows := [][]Value{}
	if p.take(']') {
		return rows, p.end()
	}
	for {
		var row []Value
		switch {
		case p.null():
		case p.take('['):
			row = []Value{}
			if !p.take(']') {
				for {
					v, err := p.value()
					if err != nil {
						return nil, err
					}
					row = append(row, v)
					if p.take(']') {
						break
					}
					if !p.take(',') {
						return nil, p.fail(", or ]")
					}
				}
			}
		default:
			return nil, p.fail("an array of values")
		}
		rows = append(rows, row)
		if p.take(']') {
			return rows, p.end()
		}
		if !p.take(',') {
			return nil, p.fail(", or ]")
		}
	}
}

type rowParser struct {
	b []byte
	i int
}

func (p *rowParser) skip() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *rowParser) take(c byte) bool {
	p.skip()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *rowParser) null() bool {
	p.skip()
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

func (p *rowParser) value() (Value, error) {
	if p.null() {
		return Value(math.NaN()), nil
	}
	start := p.i
	for p.i < len(p.b) && (p.b[p.i] >= '0' && p.b[p.i] <= '9' || p.b[p.i] == '-' || p.b[p.i] == '+' || p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil || start == p.i {
		return 0, p.fail("a number or null")
	}
	return Value(f), nil
}

func (p *rowParser) end() error {
	p.skip()
	if p.i != len(p.b) {
		return p.fail("the end")
	}
	return nil
}

func (p *rowParser) fail(want string) error {
	return fmt.Errorf("at byte %d: want %s", p.i, want)
}
