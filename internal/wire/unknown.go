package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// unknownField returns the dotted path of the first field in data that t
// does not have ("ports[0].bogus"), or "" when there is none. encoding/json
// names only the key, which is not enough to find it in a nested request.
func unknownField(data []byte, t reflect.Type) string {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	return walkUnknown(doc, t, "")
}

func walkUnknown(v any, t reflect.Type, at string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := v.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for k, e := range v {
				if p := walkUnknown(e, t.Elem(), join(at, k)); p != "" {
					return p
				}
			}
			return ""
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		for k, e := range v {
			f, ok := fieldByJSONName(t, k)
			if !ok {
				return join(at, k)
			}
			if p := walkUnknown(e, f.Type, join(at, k)); p != "" {
				return p
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return ""
		}
		for i, e := range v {
			if p := walkUnknown(e, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

func fieldByJSONName(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
