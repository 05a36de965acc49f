package access

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's role table from the rules")

const (
	readme     = "../../README.md"
	tableStart = "<!-- role table: generated from internal/access's rules; go test ./internal/access -run TestReadmeRoleTable -update -->\n"
	tableEnd   = "<!-- end of role table -->\n"
)

// roleTable is README's table of who may do what, made from rules by
// asking Allow itself, so that the docs say what the master enforces.
func roleTable() string {
	columns := []struct {
		name     string
		bindings []Binding
	}{
		{"viewer", []Binding{{"t", Viewer}}},
		{"deployer", []Binding{{"t", Deployer}}},
		{"admin", []Binding{{"t", Admin}}},
		{"cluster admin", []Binding{{AllTenants, Admin}}},
		{"another tenant's admin", []Binding{{"other", Admin}}},
		{"no role", nil},
	}
	var b strings.Builder
	b.WriteString("| action | commands |")
	for _, c := range columns {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(columns)) + "\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "| `%s` | %s |", r.Action, commands(r.Commands))
		for _, c := range columns {
			mark := "—"
			if Allow(c.bindings, false, r.Action, "t") == nil {
				mark = "yes"
			}
			b.WriteString(" " + mark + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// commands puts each command of "moat a, moat b (note)" in backquotes.
func commands(s string) string {
	if strings.HasPrefix(s, "(") || strings.HasPrefix(s, "/") {
		return s
	}
	note := ""
	if i := strings.Index(s, " ("); i >= 0 {
		s, note = s[:i], s[i:]
	}
	parts := strings.Split(s, ", ")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ", ") + note
}

// TestReadmeRoleTable: README's role table is the one the rules make.
func TestReadmeRoleTable(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	before, rest, ok := strings.Cut(doc, tableStart)
	if !ok {
		t.Fatalf("README.md has no %q", tableStart)
	}
	table, after, ok := strings.Cut(rest, tableEnd)
	if !ok {
		t.Fatalf("README.md has no %q", tableEnd)
	}
	want := roleTable()
	if table == want {
		return
	}
	if *update {
		if err := os.WriteFile(readme, []byte(before+tableStart+want+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's role table is not the rules' (go test ./internal/access -run TestReadmeRoleTable -update); want:\n%s", want)
}
