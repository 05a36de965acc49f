package node_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

func debug(t *testing.T, n *testcluster.Node, id string, stdin string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	var in *strings.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var code int
	var err error
	if in != nil {
		code, err = n.Client.Debug(ctx, id, args, in, &out, &errOut)
	} else {
		code, err = n.Client.Debug(ctx, id, args, nil, &out, &errOut)
	}
	if err != nil {
		t.Fatalf("debug %v: %v (stderr %q)", args, err, errOut.String())
	}
	return out.String(), code
}

func TestDebug(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "web", Cmd: []string{"serve", ":8080"}, Ports: []nodeapi.Port{{Port: 8080}}})
	waitLog(t, n, c.ID, "serving on")

	t.Run("ps sees the container's processes, not the node's", func(t *testing.T) {
		out, code := debug(t, n, c.ID, "", "ps", "-eo", "pid,comm")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 3 || !strings.Contains(lines[1], "1 probe") {
			t.Fatalf("ps (exit %d):\n%s\nwant the header, the probe as pid 1, and ps itself", code, out)
		}
	})
	t.Run("ss sees the container's listening socket", func(t *testing.T) {
		out, _ := debug(t, n, c.ID, "", "ss", "-Htln")
		if !strings.Contains(out, ":8080") {
			t.Fatalf("ss -tln:\n%s\nwant the probe's :8080", out)
		}
	})
	t.Run("only loopback in the network namespace", func(t *testing.T) {
		out, _ := debug(t, n, c.ID, "", "ip", "-o", "link")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "lo:") {
			t.Fatalf("ip link:\n%s\nwant only lo", out)
		}
	})
	t.Run("the node's curl reaches the container's port", func(t *testing.T) {
		out, code := debug(t, n, c.ID, "", "curl", "-s", "http://127.0.0.1:8080/")
		if code != 0 || !strings.HasPrefix(out, "probe web") {
			t.Fatalf("curl (exit %d): %q", code, out)
		}
	})
	t.Run("stdin and exit status travel", func(t *testing.T) {
		if out, _ := debug(t, n, c.ID, "hello\n", "cat"); out != "hello\n" {
			t.Errorf("cat echoed %q", out)
		}
		if _, code := debug(t, n, c.ID, "", "false"); code != 1 {
			t.Errorf("false exited %d, want 1", code)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		_, err := n.Client.Debug(context.Background(), c.ID, []string{"no-such-tool-xyz"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("unknown tool: %v, want invalid", err)
		}
		_, err = n.Client.Debug(context.Background(), "nobody-home", []string{"ps"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("unknown container: %v, want not found", err)
		}
	})
}

// TestDebugToolUnreachable: a container running as root (no capabilities)
// sees a debug tool's process but cannot reach its root directory or
// executable, which are the node's: neither while the tool keeps its
// capabilities nor after it drops them all.
func TestDebugToolUnreachable(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "snooper", User: "0:0", Cmd: []string{"snoop"}})
	waitLog(t, n, c.ID, "snooping")
	for _, tc := range []struct {
		tool []string
		seen string // its command line once it runs
	}{
		{[]string{"sleep", "0.5"}, `cmd="/usr/bin/sleep 0.5 "`},
		{[]string{"setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "sleep", "0.6"}, `cmd="sleep 0.6 "`},
	} {
		debug(t, n, c.ID, "", tc.tool...)
		e := waitLog(t, n, c.ID, tc.seen)
		if !strings.Contains(e.Line, "root=denied") || !strings.Contains(e.Line, "exe=denied") {
			t.Errorf("the container reached the debug tool %v: %s", tc.tool, e.Line)
		}
	}
}

func TestDebugNotRunning(t *testing.T) {
	n := newNode(t)
	c := run(t, n, nodeapi.ContainerSpec{Name: "gone", Cmd: []string{"exit", "0"}})
	waitContainer(t, n, c.ID, "exited", exited)
	_, err := n.Client.Debug(context.Background(), c.ID, []string{"ps"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("debug an exited container: %v, want a conflict", err)
	}
}
