package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// writes counts the Write calls made to it: each is a write(2) on a
// terminal or a pipe.
type writes struct {
	bytes.Buffer
	calls int
}

func (w *writes) Write(p []byte) (int, error) {
	w.calls++
	return w.Buffer.Write(p)
}

func TestTableIsOneWrite(t *testing.T) {
	var w writes
	rows := [][]string{{"REPLICA", "APP", "NODE"}, {"hello-a", "hello", "n1"}, {"hello-bb", "hello", "n22"}}
	if err := table(&w, rows); err != nil {
		t.Fatal(err)
	}
	want := "REPLICA    APP     NODE\nhello-a    hello   n1\nhello-bb   hello   n22\n"
	if w.calls != 1 || w.String() != want {
		t.Errorf("table: %d writes of\n%s\nwant 1 write of\n%s", w.calls, w.String(), want)
	}
}

// TestCommandOutputIsOneWrite runs moat ps against a master that answers
// on a socket: however many replicas, stdout gets one write.
func TestCommandOutputIsOneWrite(t *testing.T) {
	var reps []masterapi.Replica
	for _, id := range []string{"hello-a", "hello-b", "hello-c", "web-a", "web-b"} {
		app, _, _ := strings.Cut(id, "-")
		reps = append(reps, masterapi.Replica{ID: id, App: app, Revision: 1, Node: "n1", State: "ready", Created: time.Now()})
	}
	socket := filepath.Join(t.TempDir(), "master.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(reps)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("MOAT_MASTER_SOCKET", socket)
	for _, args := range [][]string{{"ps"}, {"ps", "--json"}} {
		var stdout, stderr writes
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("moat %v: exit %d: %s", args, code, stderr.String())
		}
		if stdout.calls != 1 || strings.Count(stdout.String(), "hello-") != 3 {
			t.Errorf("moat %v: %d writes of\n%s\nwant 1 write of all 5 replicas", args, stdout.calls, stdout.String())
		}
	}
}

// TestDiskUsed: node ls shows the disk as df does, used of used+available,
// whatever the blocks reserved for root (here 160 GiB of 252).
func TestDiskUsed(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		info nodeapi.NodeInfo
		want string
	}{
		{nodeapi.NodeInfo{DiskBytes: 252 * gib, DiskUsedBytes: 15 * gib, DiskFreeBytes: 77 * gib}, "15GiB/92GiB"},
		{nodeapi.NodeInfo{DiskBytes: 100 * gib, DiskUsedBytes: 50 * gib, DiskFreeBytes: 50 * gib}, "50GiB/100GiB"},
		{nodeapi.NodeInfo{DiskBytes: 252 * gib, DiskFreeBytes: 77 * gib}, "-"}, // a node from before diskUsedBytes
		{nodeapi.NodeInfo{}, "-"},
	}
	for _, tt := range tests {
		if got := diskUsed(tt.info); got != tt.want {
			t.Errorf("diskUsed(%+v) = %q, want %q", tt.info, got, tt.want)
		}
	}
}

func TestEdgePorts(t *testing.T) {
	for _, tt := range []struct {
		info nodeapi.NodeInfo
		want string
	}{
		{nodeapi.NodeInfo{}, "-"},
		{nodeapi.NodeInfo{EdgeHTTP: ":80"}, "-"}, // not an edge: its ports are not served
		{nodeapi.NodeInfo{Edge: true, EdgeHTTP: ":80", EdgeHTTPS: ":443"}, ":80,:443"},
		{nodeapi.NodeInfo{Edge: true, EdgeHTTP: ":8080"}, ":8080"},
	} {
		if got := edgePorts(tt.info); got != tt.want {
			t.Errorf("edgePorts(%+v) = %q, want %q", tt.info, got, tt.want)
		}
	}
}
