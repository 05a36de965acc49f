package node_test

import (
	"context"
	"net/http/httptrace"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestMetricsPollAnsweredOnStop: a daemon told to stop (SIGTERM) while
// the master long-polls its ring answers the poll at once, empty, rather
// than holding its shutdown until the server gives up on the request
// (the master always has one waiting) and cutting the connection.
func TestMetricsPollAnsweredOnStop(t *testing.T) {
	n := testcluster.StartNode(t, "--metrics-interval", "10m")
	first, err := n.Client.Metrics(context.Background(), 0, nodeapi.MaxMetricsPage, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(written) }}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.Background(), trace), 2*time.Minute)
	defer cancel()
	type answer struct {
		p   nodeapi.MetricsPage
		err error
	}
	got := make(chan answer, 1)
	go func() {
		// A connection of its own: one the daemon's shutdown could take
		// for idle would be retried by the transport, after the socket
		// is gone.
		p, err := nodeapi.UnixClient(n.Socket).Metrics(ctx, first.Newest, nodeapi.MaxMetricsPage, nodeapi.MaxMetricsWait)
		got <- answer{p, err}
	}()
	<-written
	// A request on another new connection answered: the daemon accepted
	// the poll's connection (accepted in order) and reads its request.
	if _, err := nodeapi.UnixClient(n.Socket).Metrics(context.Background(), 0, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(n.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatalf("the poll waiting when the daemon stopped: %v; want an answer", a.err)
	}
	if len(a.p.Raw) != 0 || a.p.Gap || a.p.Newest != first.Newest {
		t.Errorf("the poll answered on stop: %d records, gap %v, newest %d; want none, no gap, newest %d", len(a.p.Raw), a.p.Gap, a.p.Newest, first.Newest)
	}
}
