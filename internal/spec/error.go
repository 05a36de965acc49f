package spec

import (
	"bytes"
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

// yamlParserProblems are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner's. The two count the line they name differently:
// the scanner from 1, the line meant; the parser from 0, so it names the
// line before the one meant, and no line when it means the first. Where
// the parser knows the construct it was in, the line is that construct's
// start (the line of an unclosed [ or {), otherwise where it stopped.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxErr turns a yaml.v3 syntax error ("yaml: line 3: mapping values are
// not allowed in this context") into an *Error at the line yaml means, in
// data. A problem met where the file ends (a [ never closed) is put on its
// last line, not on the line after it.
func syntaxErr(err error, data []byte) *Error {
	line, msg := 0, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE().FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if yamlParserProblems[msg] {
		line++
	}
	e := &Error{Line: line, Msg: "invalid YAML: " + msg}
	if last := lineCount(data); line > last {
		e.Line, e.Msg = last, e.Msg+" at the end of the file"
	}
	return e
}

// lineCount is the number of lines in data, the last one counted whether
// or not a newline ends it.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
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
