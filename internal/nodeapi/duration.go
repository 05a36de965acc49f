package nodeapi

import (
	"encoding/json"
	"reflect"
	"time"
)

// Duration is a time.Duration that travels as a Go duration string ("10s").
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string; a bare number is refused because
// its unit would be a guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	// An *json.UnmarshalTypeError lets encoding/json add the field's path.
	bad := &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return bad
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return bad
	}
	*d = Duration(v)
	return nil
}
