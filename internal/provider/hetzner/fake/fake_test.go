package fake

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/provider"
)

func call(t *testing.T, f *Fake, method, path, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp, v
}

// TestWire: what the fake answers, on the wire, as the reference has it.
func TestWire(t *testing.T) {
	mem := &provider.MemoryMachines{}
	f, err := New(mem, Options{RateLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok := f.Token()

	resp, v := call(t, f, "GET", "/servers", "nope", "")
	if resp.StatusCode != 401 || v["error"].(map[string]any)["code"] != "unauthorized" {
		t.Fatalf("bad token: %d %v", resp.StatusCode, v)
	}
	resp, v = call(t, f, "POST", "/servers", tok, `{"name":"a","server_type":"cx22","image":"debian-12","labels":{"moat-pool":"web"}}`)
	if resp.StatusCode != 201 || v["action"].(map[string]any)["command"] != "create_server" ||
		v["action"].(map[string]any)["status"] != "running" || len(v["next_actions"].([]any)) != 1 {
		t.Fatalf("create: %d %v", resp.StatusCode, v)
	}
	for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if resp.Header.Get("RateLimit-Limit") != "5" {
		t.Errorf("RateLimit-Limit %q", resp.Header.Get("RateLimit-Limit"))
	}
	resp, v = call(t, f, "POST", "/servers", tok, `{"name":"a","server_type":"cx22","image":"debian-12"}`)
	if resp.StatusCode != 409 || v["error"].(map[string]any)["code"] != "uniqueness_error" {
		t.Fatalf("same name: %d %v", resp.StatusCode, v)
	}
	resp, v = call(t, f, "GET", "/servers?per_page=1&label_selector=moat-pool%3Dweb", tok, "")
	p := v["meta"].(map[string]any)["pagination"].(map[string]any)
	if resp.StatusCode != 200 || p["next_page"] != nil || p["previous_page"] != nil || p["last_page"].(float64) != 1 ||
		len(v["servers"].([]any)) != 1 {
		t.Fatalf("list: %d %v", resp.StatusCode, v)
	}
	resp, v = call(t, f, "GET", "/servers/424242", tok, "")
	if resp.StatusCode != 404 || v["error"].(map[string]any)["code"] != "not_found" {
		t.Fatalf("no such server: %d %v", resp.StatusCode, v)
	}
	// The bucket of 5 is spent by the 5th request (the unauthorized one
	// did not count): the next is a 429 saying when it is full again.
	resp, _ = call(t, f, "GET", "/server_types", tok, "")
	if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("5th request: %d, remaining %q", resp.StatusCode, resp.Header.Get("RateLimit-Remaining"))
	}
	resp, v = call(t, f, "GET", "/servers", tok, "")
	if resp.StatusCode != 429 || v["error"].(map[string]any)["code"] != "rate_limit_exceeded" || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("6th request: %d %v %v", resp.StatusCode, v, resp.Header)
	}
	reset, _ := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
	if until := time.Until(time.Unix(reset, 0)); until < 50*time.Minute || until > 61*time.Minute {
		t.Errorf("reset in %s, want about an hour (5 requests at one per 12 min)", until)
	}
}

func TestPages(t *testing.T) {
	f, err := New(&provider.MemoryMachines{}, Options{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if resp, v := call(t, f, "POST", "/servers", f.Token(), `{"name":"`+n+`","server_type":"cx22","image":114690387,"location":"hel1"}`); resp.StatusCode != 201 {
			t.Fatalf("create %s: %v", n, v)
		}
	}
	var names []string
	for page := 1; page != 0; {
		_, v := call(t, f, "GET", "/servers?page="+strconv.Itoa(page), f.Token(), "")
		for _, s := range v["servers"].([]any) {
			names = append(names, s.(map[string]any)["name"].(string))
		}
		p := v["meta"].(map[string]any)["pagination"].(map[string]any)
		if p["total_entries"].(float64) != 5 || p["per_page"].(float64) != 2 || p["last_page"].(float64) != 3 {
			t.Fatalf("page %d: %v", page, p)
		}
		page = 0
		if n, ok := p["next_page"].(float64); ok {
			page = int(n)
		}
	}
	if strings.Join(names, ",") != "a,b,c,d,e" {
		t.Fatalf("pages gave %v", names)
	}
	if resp, _ := call(t, f, "GET", "/servers?page=0", f.Token(), ""); resp.StatusCode != 400 {
		t.Errorf("page 0: %d", resp.StatusCode)
	}
}

func TestSelector(t *testing.T) {
	l := map[string]string{"moat-cluster": "c1", "moat-pool": "web", "env": "prod"}
	cases := map[string]bool{
		"":                               true,
		"moat-cluster=c1":                true,
		"moat-cluster==c1,moat-pool=web": true,
		"moat-cluster=c1,moat-pool=db":   false,
		"moat-pool!=db":                  true,
		"env":                            true,
		"!env":                           false,
		"!other":                         true,
		"moat-pool in (db, web)":         true,
		"moat-pool notin (web)":          false,
		"env in (prod),moat-cluster=c1":  true,
	}
	for s, want := range cases {
		sel, err := parseSelector(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if got := sel.matches(l); got != want {
			t.Errorf("%q matches %v, want %v", s, got, want)
		}
	}
	for _, bad := range []string{"=x", "a=b=c", "a in (b", "a in ((b))", "a)", ",", "a=-b", "in (a)", "a foo (b)"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzSelector: any selector either is refused or parses into
// requirements on valid keys; a k=v,… selector of valid labels matches
// exactly the labels it names.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{"a=b", "a!=b,c", "!a", "a in (b,c)", "x notin (y)", "a==b", "k8s.io/x=y", "a in ()", "(,)"} {
		f.Add(s, "k", "v")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		if sel, err := parseSelector(s); err == nil {
			for _, r := range sel {
				if !validLabelKey(r.key) {
					t.Fatalf("%q: key %q", s, r.key)
				}
				for _, val := range r.values {
					if !validLabelValue(val) {
						t.Fatalf("%q: value %q", s, val)
					}
				}
			}
			sel.matches(map[string]string{k: v})
		}
		if validLabelKey(k) && validLabelValue(v) {
			sel, err := parseSelector(k + "=" + v)
			if err != nil {
				t.Fatalf("%s=%s: %v", k, v, err)
			}
			if !sel.matches(map[string]string{k: v}) || sel.matches(map[string]string{k: v + "x"}) {
				t.Fatalf("%s=%s matches wrongly", k, v)
			}
		}
	})
}
