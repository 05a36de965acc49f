package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLinks(t *testing.T) {
	base := "name: web\nimage: web:1\nports: [{name: http, port: 8080}]\n"
	a, err := Parse([]byte(base+"links: [{app: db, port: 5432}, {app: api, port: 8080, local: 9000}]\n"), "app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Link{{App: "db", Port: 5432, Local: 5432}, {App: "api", Port: 8080, Local: 9000}}
	if diff := cmp.Diff(want, a.Links); diff != "" {
		t.Fatalf("links (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"links: [{port: 5432}]", `links[0].app: required`},
		{"links: [{app: DB, port: 5432}]", `links[0].app: "DB"`},
		{"links: [{app: web, port: 5432}]", `links[0].app: "web" is this app`},
		{"links: [{app: db}]", `links[0].port: 0: want the target's tcp port`},
		{"links: [{app: db, port: 70000}]", `links[0].port: 70000`},
		{"links: [{app: db, port: 5432, local: -1}]", `links[0].local: -1`},
		{"links: [{app: db, port: 8080}]", `links[0].local: 8080 is a port this app declares`},
		{"links: [{app: db, port: 5432}, {app: api, port: 5432}]", `links[1].local: 5432 is also links[0].local`},
		{"links: [{app: db, port: 5432}, {app: db, port: 5432, local: 1}]", `links[1]: db:5432 is also links[0]`},
		{"links: [{app: db, port: 5432, host: x}]", `links[0].host: unknown field`},
		{"links: [{app: db, port: db}]", `links[0].port`},
		{"links: {app: db}", `links`},
	} {
		_, err := Parse([]byte(base+tc.yaml+"\n"), "app.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
