package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

func rawClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
}

// TestBadRequests: malformed requests get 400 and a message naming the
// field, and change nothing.
func TestBadRequests(t *testing.T) {
	n := newNode(t)
	hc := rawClient(n.Socket)
	tests := []struct {
		name, method, path, body string
		status                   int
		mention                  string
	}{
		{"malformed JSON", "POST", "/v1/containers", `{"image":`, 400, "JSON"},
		{"unknown field", "POST", "/v1/containers", `{"image":"probe:1","imagee":"x"}`, 400, "imagee"},
		{"nested unknown field", "POST", "/v1/containers", `{"image":"probe:1","resources":{"memroy":1}}`, 400, "resources.memroy"},
		{"wrong type", "POST", "/v1/containers", `{"image":"probe:1","resources":{"memory":"lots"}}`, 400, "resources.memory"},
		{"bad port", "POST", "/v1/containers", `{"image":"probe:1","ports":[{"port":99999}]}`, 400, "ports[0].port"},
		{"missing image", "POST", "/v1/containers", `{"name":"x"}`, 400, "image"},
		{"unknown image", "POST", "/v1/containers", `{"image":"nope:1"}`, 404, "nope:1"},
		{"bind mount outside the allowed directories", "POST", "/v1/containers", `{"image":"probe:1","mounts":[{"source":"/etc","target":"/host-etc"}]}`, 400, "mounts[0].source"},
		{"bad query", "POST", "/v1/containers?start=maybe", `{"image":"probe:1"}`, 400, "start"},
		{"logs of an unknown container", "GET", "/v1/containers/x/logs?tail=-3", ``, 404, "x"},
		{"bad stop timeout", "POST", "/v1/containers/x/stop?timeout=soon", ``, 400, "timeout"},
		{"unknown path", "GET", "/v1/nothing", ``, 400, "/v1/nothing"},
		{"not an archive", "POST", "/v1/images/import", `hello`, 400, "tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://node"+tt.path, strings.NewReader(tt.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb nodeapi.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &eb)
			if resp.StatusCode != tt.status || !strings.Contains(eb.Error, tt.mention) {
				t.Errorf("%s %s: %d %q, want %d mentioning %q", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.mention)
			}
		})
	}
	if cs, _ := n.Client.Containers(context.Background()); len(cs) != 0 {
		t.Errorf("bad requests left containers behind: %v", cs)
	}
}

func TestSocketIsRootOnly(t *testing.T) {
	n := testcluster.StartNode(t)
	fi, err := os.Stat(n.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	// The daemon listens on no TCP or UDP port at all.
	for _, f := range []string{"/proc/%d/net/tcp", "/proc/%d/net/tcp6", "/proc/%d/net/udp", "/proc/%d/net/udp6"} {
		if listening := testcluster.ListeningInodes(t, f); len(listening) > 0 {
			for _, fd := range testcluster.SocketInodes(t, n.Pid()) {
				if listening[fd] {
					t.Errorf("the node daemon holds a listening inet socket (%s)", f)
				}
			}
		}
	}
}

func TestImageInUse(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	c := run(t, n, nodeapi.ContainerSpec{Name: "user", Cmd: []string{"exit", "0"}})
	waitContainer(t, n, c.ID, "exited", exited)
	if err := n.Client.RemoveImage(ctx, probeImage); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("remove an image a container uses: %v, want conflict", err)
	}
	if err := n.Client.RemoveContainer(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := n.Client.RemoveImage(ctx, probeImage); err != nil {
		t.Fatalf("remove an unused image: %v", err)
	}
	if imgs, _ := n.Client.Images(ctx); len(imgs) != 0 {
		t.Errorf("images left: %v", imgs)
	}
}
