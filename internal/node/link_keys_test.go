package node

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/nodeapi"
)

const (
	testKeyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	testKeyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

func grant(id, target string, port int, key string) nodeapi.LinkGrant {
	return nodeapi.LinkGrant{ID: id, Target: target, Port: port, Key: key}
}

func TestRewriteAuthorized(t *testing.T) {
	operator := "ssh-ed25519 AAAAoperator operator@laptop\n"
	master := `restrict,command="/usr/local/bin/moat gate --as master" ssh-ed25519 AAAAmaster moat-master` + "\n"
	a := grant("web>api:8080", "api", 8080, testKeyA)
	b := grant("web>db:5432", "db", 5432, testKeyB)
	lineA := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, a) + "\n"
	lineB := nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, b) + "\n"
	a2 := grant("web>api:8080", "api", 8080, testKeyB) // its key rotated
	tests := []struct {
		name   string
		old    string
		grants []nodeapi.LinkGrant
		want   string
	}{
		{"nothing to do", operator + master, nil, operator + master},
		{"empty file, no grants", "", nil, ""},
		{"adds grants sorted, after the others", operator + master, []nodeapi.LinkGrant{b, a}, operator + master + lineA + lineB},
		{"a file without a final newline gets one before", strings.TrimSuffix(operator, "\n"), []nodeapi.LinkGrant{a}, operator + lineA},
		{"keeps a wanted line where it is", lineA + operator + master, []nodeapi.LinkGrant{a}, lineA + operator + master},
		{"removes a grant that is gone, only it", operator + lineA + master + lineB, []nodeapi.LinkGrant{b}, operator + master + lineB},
		{"replaces a changed line in place", lineA + operator, []nodeapi.LinkGrant{a2}, nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, a2) + "\n" + operator},
		{"one line per grant", lineA + operator + lineA, []nodeapi.LinkGrant{a}, lineA + operator},
		{"removes every link line when no grant is left", operator + lineA + lineB + master, nil, operator + master},
		{"comments, blank lines and CRLF untouched", "# keys\r\n\n" + operator + "  \n", []nodeapi.LinkGrant{a}, "# keys\r\n\n" + operator + "  \n" + lineA},
		{"a moat-link: word elsewhere is not a marker", "ssh-ed25519 AAAA moat-link:x extra\n", nil, "ssh-ed25519 AAAA moat-link:x extra\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(rewriteAuthorized([]byte(tt.old), tt.grants))
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if again := string(rewriteAuthorized([]byte(got), tt.grants)); again != got {
				t.Errorf("not stable: a second rewrite gives\n%s", again)
			}
		})
	}
}

// FuzzRewriteAuthorized: whatever the file holds, every line that is not
// a link key's is kept byte for byte and in order, and each grant has
// exactly one line.
func FuzzRewriteAuthorized(f *testing.F) {
	a := grant("web>api:8080", "api", 8080, testKeyA)
	f.Add("ssh-ed25519 AAAA op\n" + nodeapi.AuthorizedLinkLine(nodeapi.BinaryPath, a) + "\n")
	f.Add("x moat-link:web>api:8080\r\nno newline")
	f.Add("")
	f.Fuzz(func(t *testing.T, old string) {
		grants := []nodeapi.LinkGrant{a, grant("b", "db", 5432, testKeyB)}
		got := string(rewriteAuthorized([]byte(old), grants))
		var kept []string
		for _, l := range strings.SplitAfter(old, "\n") {
			if _, ok := linkLineID(l); !ok && l != "" {
				kept = append(kept, l)
			}
		}
		lines := strings.SplitAfter(got, "\n")
		i := 0
		count := map[string]int{}
		for _, l := range lines {
			if id, ok := linkLineID(l); ok {
				count[id]++
				continue
			}
			if l == "" {
				continue
			}
			if i < len(kept) && (l == kept[i] || l == kept[i]+"\n" && i == len(kept)-1) {
				i++
				continue
			}
			t.Fatalf("line %q is not one of the file's, in order", l)
		}
		if i != len(kept) {
			t.Fatalf("kept %d of the file's %d other lines", i, len(kept))
		}
		for _, g := range grants {
			if count[g.ID] != 1 {
				t.Fatalf("grant %s has %d lines", g.ID, count[g.ID])
			}
		}
		if len(count) != len(grants) {
			t.Fatalf("link lines of grants that are not there: %v", count)
		}
	})
}

func TestSyncAuthorizedKeepsModeAndWritesOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(path, []byte("ssh-ed25519 AAAA op\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	a := grant("web>api:8080", "api", 8080, testKeyA)
	if err := syncAuthorized(path, []nodeapi.LinkGrant{a}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 as before", st.Mode().Perm())
	}
	if err := syncAuthorized(path, []nodeapi.LinkGrant{a}); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st, st2) {
		t.Error("an unchanged table rewrote the file")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	link := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if err := syncAuthorized(link, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "ssh-ed25519 AAAA op\n" {
		t.Errorf("through the symlink: %q", got)
	}
	missing := filepath.Join(t.TempDir(), "none", "authorized_keys")
	if err := syncAuthorized(missing, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("no grants created a file")
	}
}

func TestLeastBusy(t *testing.T) {
	eps := []nodeapi.LinkEndpoint{{Container: "a", Node: "n1"}, {Container: "b", Node: "n1"}, {Container: "c", Node: "n2"}}
	counts := map[string]int{"n1/a": 2, "n1/b": 1, "n2/c": 1}
	first := func(int) int { return 0 }
	never := func(int) int { return 1 }
	if got := leastBusy(eps, counts, make([]bool, 3), never); got != 1 {
		t.Errorf("got %d, want the first of the least busy (1)", got)
	}
	if got := leastBusy(eps, counts, make([]bool, 3), first); got != 2 {
		t.Errorf("got %d, want the tie broken to the last (2)", got)
	}
	if got := leastBusy(eps, counts, []bool{false, true, true}, first); got != 0 {
		t.Errorf("got %d, want the only one left (0)", got)
	}
	if got := leastBusy(eps, counts, []bool{true, true, true}, first); got != -1 {
		t.Errorf("got %d, want -1 when all were tried", got)
	}
	// Ties are spread evenly.
	seen := map[int]int{}
	for range 3000 {
		seen[leastBusy(eps, map[string]int{}, make([]bool, 3), rand.IntN)]++
	}
	for i := range 3 {
		if seen[i] < 800 {
			t.Errorf("endpoint %d picked %d times of 3000: %v", i, seen[i], seen)
		}
	}
}
