package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHostileText: whatever an app prints, or a node or replica reports,
// the app page gains no markup from it: the page has as many '<' as with
// harmless text.
func FuzzHostileText(f *testing.F) {
	for _, s := range []string{hostile, `</pre><script>x</script>`, `"><svg onload=alert(1)>`, "\x00<\u2028>", `{{.}}`, `<!--`, `]]><![CDATA[`} {
		f.Add(s)
	}
	m := testMaster()
	h := New(m.client(f), nil)
	page := func() string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/apps/web", nil))
		if w.Code != 200 {
			f.Fatalf("status %d", w.Code)
		}
		return w.Body.String()
	}
	set := func(s string) {
		m.logs["web"][1].Line = s
		m.replicas[1].Message = s
		m.events[0].Message = s
	}
	set("harmless")
	want := strings.Count(page(), "<")
	f.Fuzz(func(t *testing.T, s string) {
		set(s)
		body := page()
		if n := strings.Count(body, "<"); n != want {
			t.Fatalf("%q: the page has %d '<', want %d", s, n, want)
		}
	})
}
