package master_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// linkFetch asks a web replica, through moat tunnel, to GET / from
// 127.0.0.1:LOCAL inside its own container: what a linked app does. It
// returns the fetching replica and the answer ("probe REPLICA").
func linkFetch(tunnel string, local int) (from, answer string, err error) {
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://%s/fetch?addr=127.0.0.1:%d&path=/", tunnel, local))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	from = resp.Header.Get("X-Probe")
	if resp.StatusCode != http.StatusOK {
		return from, "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return from, strings.TrimSpace(string(body)), nil
}

// linkLines counts the link keys pinned in each node's authorized_keys.
func (e *env) linkLines() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, n := range e.c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.Dir, "root", ".ssh", "authorized_keys"))
		if err != nil {
			e.t.Fatal(err)
		}
		out[n.Name] = strings.Count(string(b), "moat-link:")
	}
	return out
}

// TestLinks: web's replicas reach api's replicas at 127.0.0.1:9000 inside
// their own containers — on the same node straight into api's namespace,
// on other nodes over SSH with the link's key — spread over api's ready
// replicas; they go on reaching api when a node holding one dies; nothing
// else is reachable; removing the link takes its listener and its keys
// away.
func TestLinks(t *testing.T) {
	e := newEnv(t, 3)
	r := e.deploy(spec("api", 3, "placement: {spread: true}"))
	e.wait("api", r.Revision)
	// A link to an app the tenant lacks, or a port api does not declare, changes nothing.
	for yaml, want := range map[string]string{
		spec("web", 2, "links: [{app: nosuch, port: 8080, local: 9000}]"): "links[0].app: no app nosuch",
		spec("web", 2, "links: [{app: api, port: 8081, local: 9000}]"):    "links[0].port: api does not declare tcp port 8081",
	} {
		if _, err := e.m.Client.Deploy(context.Background(), masterapi.DeployRequest{Spec: yaml, File: "app.yaml"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("deploy: %v, want %q", err, want)
		}
	}
	r = e.deploy(spec("web", 2, "placement: {spread: true}", "links: [{app: api, port: 8080, local: 9000}]"))
	e.wait("web", r.Revision)
	owner := map[string]string{}
	for _, app := range []string{"api", "web"} {
		for _, rep := range e.replicas(app) {
			owner[rep.ID] = rep.Node
		}
	}
	tun := e.startTunnel(func(line string) string {
		if m := regexp.MustCompile(`^tunnel (127\.0\.0\.1:\d+) → web:8080\n$`).FindStringSubmatch(line); m != nil {
			return m[1]
		}
		return ""
	}, "web:8080", "0")

	// Every web replica reaches api; some answers come from another node.
	deadline := time.Now().Add(30 * time.Second)
	seen, crossNode := map[string]int{}, 0
	for len(seen) < 3 || crossNode == 0 {
		from, got, err := linkFetch(tun.addr, 9000)
		if err == nil {
			api := strings.TrimPrefix(got, "probe ")
			if owner[api] == "" || !strings.HasPrefix(api, "api-") {
				t.Fatalf("web's link answered by %q, not a replica of api %v", got, owner)
			}
			seen[api]++
			if owner[api] != owner[from] {
				crossNode++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("through the link within 30s: answered by %v (%d across nodes), last error %v; want all 3 of api's replicas, some across nodes", seen, crossNode, err)
		}
	}
	// Nothing but the link: no listener on another port of web's loopback.
	if _, _, err := linkFetch(tun.addr, 9001); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("fetch from 127.0.0.1:9001 in web: %v, want connection refused", err)
	}
	if keys := e.linkLines(); keys["n1"]+keys["n2"]+keys["n3"] == 0 {
		t.Errorf("no link key pinned on any node: %v", keys)
	}

	// A node holding an api replica dies: after the master notices, every
	// request through the link is answered; none goes to the dead one.
	dead := ""
	for api, node := range owner {
		if strings.HasPrefix(api, "api-") && node != owner[webOn(owner)] {
			dead = node
			break
		}
	}
	if err := e.c.StopNode(dead); err != nil {
		t.Fatal(err)
	}
	e.waitNode(dead, "down", 10*time.Second)
	for i := range 30 {
		from, got, err := linkFetch(tun.addr, 9000)
		if owner[from] == dead {
			continue // the tunnel reached a web replica on the dead node before the master moved it
		}
		if err != nil {
			t.Fatalf("request %d through the link after %s died: %v", i, dead, err)
		}
		if owner[strings.TrimPrefix(got, "probe ")] == dead {
			t.Fatalf("request %d answered by %s on the dead node %s", i, got, dead)
		}
	}

	// Without the link: the listener and the keys go, on the dead node
	// too once it is back.
	r = e.deploy(spec("web", 2, "placement: {spread: true}"))
	e.wait("web", r.Revision)
	if err := e.c.StartNode(dead); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, _, err := linkFetch(tun.addr, 9000)
		keys := e.linkLines()
		if err != nil && strings.Contains(err.Error(), "refused") && keys["n1"]+keys["n2"]+keys["n3"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the link was removed and %s came back: fetch %v, link keys pinned %v; want refused and none", dead, err, keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// webOn is some web replica.
func webOn(owner map[string]string) string {
	for id := range owner {
		if strings.HasPrefix(id, "web-") {
			return id
		}
	}
	return ""
}

// waitNode polls until the master reports the node in the state.
func (e *env) waitNode(name, state string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := e.m.Client.Nodes(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Name == name && n.State == state {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("node %s not %s within %s: %+v", name, state, timeout, nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
