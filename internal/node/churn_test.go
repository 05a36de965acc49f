package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestChurnNoHang: a node sampling its metrics every second while
// containers are created, stopped and removed in bulk, its info polled and
// its link table set, answers every call. Its daemon once hung for good
// right after a remove: the sampler held the containers map's lock while
// waiting for a container's, which Remove held while waiting for the map's.
// A call that does not answer within its deadline makes the daemon print
// its goroutines (SIGQUIT) into the failure's log.
func TestChurnNoHang(t *testing.T) {
	n := newNode(t, "--metrics-interval", "1s")
	const (
		rounds = 6
		batch  = 12
		call   = 20 * time.Second // far above any call's time on a loaded machine
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu     sync.Mutex
		failed []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failed = append(failed, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// Alongside: info polled, the link table set, as the master does.
	var polls sync.WaitGroup
	poll := func(what string, f func(context.Context) error) {
		polls.Go(func() {
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, call)
				err := f(cctx)
				ccancel()
				if err != nil && ctx.Err() == nil {
					fail("%s: %v", what, err)
					return
				}
			}
		})
	}
	poll("info", func(ctx context.Context) error { _, err := n.Client.Info(ctx); return err })
	poll("links", func(ctx context.Context) error { return n.Client.SetLinks(ctx, nodeapi.LinkTable{}) })
	zero := time.Duration(0)
	for r := 0; r < rounds && len(snapshot(&mu, &failed)) == 0; r++ {
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() {
				id := fmt.Sprintf("churn-%d-%d", r, i)
				cctx, ccancel := context.WithTimeout(ctx, call)
				defer ccancel()
				if _, err := n.Client.CreateContainer(cctx, nodeapi.ContainerSpec{Name: id, Image: probeImage, Cmd: []string{"sleep"}}, true); err != nil {
					fail("create %s: %v", id, err)
					return
				}
				if _, err := n.Client.StopContainer(cctx, id, &zero); err != nil {
					fail("stop %s: %v", id, err)
					return
				}
				if err := n.Client.RemoveContainer(cctx, id, true); err != nil {
					fail("remove %s: %v", id, err)
				}
			})
		}
		wg.Wait()
	}
	cancel()
	polls.Wait()
	if f := snapshot(&mu, &failed); len(f) > 0 {
		dumpGoroutines(t, n)
		t.Fatalf("the node stopped answering:\n%s", strings.Join(f, "\n"))
	}
}

func snapshot(mu *sync.Mutex, s *[]string) []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), *s...)
}

// dumpGoroutines asks the daemon for its goroutines (SIGQUIT: a Go
// program prints every stack and exits); they land in its log, which the
// node's cleanup prints on failure.
func dumpGoroutines(t *testing.T, n *testcluster.Node) {
	pid := n.Pid()
	if pid <= 0 || syscall.Kill(pid, syscall.SIGQUIT) != nil {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
}
