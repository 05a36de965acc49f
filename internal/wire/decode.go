// Package wire holds the conventions every moat API shares: HTTP (1.1,
// and unencrypted HTTP/2 where the transport is already secure) with JSON
// bodies, strict decoding that names the offending field, errors as
// {"error": "..."} with a status from their kind, and a client for it.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// MaxRequestBytes bounds every JSON request body the daemon decodes.
const MaxRequestBytes = 1 << 20

// Decode reads exactly one JSON object into v, refusing unknown fields,
// trailing data and bodies over MaxRequestBytes. Errors are errs.ErrInvalid
// and name the offending field where JSON allows it.
func Decode(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	if len(data) > MaxRequestBytes {
		return errs.Invalid("", "request body over %d bytes", MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			if f := unknownField(data, reflect.TypeOf(v)); f != "" {
				return errs.Invalid(f, "unknown field")
			}
		}
		return jsonError(err)
	}
	if dec.More() {
		return errs.Invalid("", "trailing data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		if typeErr.Type.Name() == "Duration" {
			return errs.Invalid(field, "%s: want a duration such as \"10s\"", typeErr.Value)
		}
		return errs.Invalid(field, "want %s, got JSON %s", kindName(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return errs.Invalid("", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.EOF):
		return errs.Invalid("", "empty request body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Invalid("", "truncated JSON")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return errs.Invalid(strings.Trim(f, `"`), "unknown field")
	}
	return errs.Invalid("", "%s", strings.TrimPrefix(msg, "json: "))
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
