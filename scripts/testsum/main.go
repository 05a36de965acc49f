// Command testsum reads `go test -json` on stdin and writes what a person
// needs: each package's result line, the whole output of every test that
// failed, every skip with its reason, and counts. It exits non-zero if a
// test or a package failed, or, with -no-skips, if any test skipped: in CI
// nothing may skip, since the test script installs everything tests need.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type summary struct {
	out              io.Writer
	outputs          map[string][]string // package/test → its output so far
	passed, failed   int
	skipped          []string
	failedPkgs       []string
	failedTestsNames []string
}

func main() {
	noSkips := flag.Bool("no-skips", false, "exit non-zero if any test skipped")
	flag.Parse()
	s := &summary{out: os.Stdout, outputs: map[string][]string{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	os.Exit(s.report(*noSkips))
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(s.out, sc.Text()) // not JSON: a build error, say
			continue
		}
		s.add(e)
	}
	return sc.Err()
}

func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output":
		s.outputs[key] = append(s.outputs[key], e.Output)
		if e.Test == "" && isResultLine(e.Output) {
			fmt.Fprint(s.out, e.Output)
		}
	case "pass":
		if e.Test != "" {
			s.passed++
		}
		delete(s.outputs, key)
	case "skip":
		if e.Test != "" {
			s.skipped = append(s.skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason(s.outputs[key])))
		}
		delete(s.outputs, key)
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "build-fail":
		s.failedPkgs = append(s.failedPkgs, e.Package+" (build)")
	case "fail":
		if e.Test == "" {
			s.failedPkgs = append(s.failedPkgs, e.Package)
			for _, l := range s.outputs[key] {
				if !isResultLine(l) { // already written
					fmt.Fprint(s.out, l)
				}
			}
		} else {
			s.failed++
			s.failedTestsNames = append(s.failedTestsNames, e.Package+" "+e.Test)
			if !strings.Contains(e.Test, "/") { // a parent prints its subtests' output too
				fmt.Fprint(s.out, strings.Join(s.outputs[key], ""))
			}
		}
		delete(s.outputs, key)
	}
}

// isResultLine says whether a package's output line is its verdict
// ("ok  pkg 1.2s", "FAIL pkg", "?   pkg [no test files]").
func isResultLine(l string) bool {
	return strings.HasPrefix(l, "ok  ") || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "?   ")
}

// reason is what a skipped test said: its output without the framing lines.
func reason(lines []string) string {
	var kept []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		kept = append(kept, t)
	}
	return strings.Join(kept, " ")
}

func (s *summary) report(noSkips bool) int {
	sort.Strings(s.skipped)
	for _, k := range s.skipped {
		fmt.Fprintln(s.out, "SKIP", k)
	}
	fmt.Fprintf(s.out, "\n%d passed, %d failed, %d skipped; %d packages failed\n", s.passed, s.failed, len(s.skipped), len(s.failedPkgs))
	for _, f := range s.failedTestsNames {
		fmt.Fprintln(s.out, "FAILED", f)
	}
	switch {
	case s.failed > 0 || len(s.failedPkgs) > 0:
		return 1
	case noSkips && len(s.skipped) > 0:
		fmt.Fprintln(s.out, "tests skipped, and CI is set: everything they need must be installed by scripts/test")
		return 1
	}
	return 0
}
