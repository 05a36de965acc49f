package spec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
)

// Error is what is wrong with a spec: where (file, line, field path such as
// "ports[1].name") and what. Parts that are not known are zero and left out
// of the message: Validate knows no file or line.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error formats as "app.yaml:7: resources.memory: MSG", leaving out the
// parts that are unknown ("line 7: ..." when there is no file name).
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, errs.ErrInvalid) hold.
func (e *Error) Unwrap() error { return errs.ErrInvalid }

// fieldErr is an error at a field whose line is looked up later.
func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// yamlLineRE matches the position yaml.v3 puts in its syntax errors.
var yamlLineRE = lazyRE(`^yaml: line (\d+): (.*)$`)

// syntaxErr turns a yaml.v3 syntax error ("yaml: line 3: mapping values are
// not allowed in this context") into an *Error carrying the line.
func syntaxErr(err error) *Error {
	msg := err.Error()
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// pathLine finds the line of a field path, falling back to its nearest
// recorded ancestor ("update.canary" → "update") and finally to the top.
func pathLine(lines map[string]int, path string) int {
	for {
		if l, ok := lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = path[:max(strings.LastIndexAny(path, ".["), 0)]
	}
}
