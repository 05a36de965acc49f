package edge

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoFailedRequestsAcrossSwitches moves an app to a new replica six
// times under continuous load, as a deploy does: the new replica starts,
// Dial turns to it, idle upstream connections are dropped, and the old
// replica shuts down gracefully (finishing what it has, closing its idle
// keep-alive connections). No request may fail: one that meets a pooled
// connection the old replica just closed is retried by the Transport on a
// fresh one, since nothing of it was taken.
func TestNoFailedRequestsAcrossSwitches(t *testing.T) {
	bk := newBackends()
	start := func() (*http.Server, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: named("web"), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return srv, l.Addr().String()
	}
	old, addr := start()
	bk.set("web", 80, addr)
	s, edgeAddr := startEdge(t, Config{Dial: bk.Dial})
	if err := s.SetTable(Table{Routes: []Route{{Host: "web.test", App: "web", Port: 80}}}); err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+edgeAddr+"/", nil)
				req.Host = "web.test"
				resp, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for ok.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("load stalled at %d requests", ok.Load())
			}
			time.Sleep(5 * time.Millisecond) // polling the load's progress, with a deadline
		}
	}
	waitFor(200)
	for range 6 {
		next, addr := start()
		bk.set("web", 80, addr)
		s.CloseIdleUpstreams()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := old.Shutdown(ctx); err != nil {
			t.Errorf("old replica's shutdown: %v", err)
		}
		cancel()
		old = next
		waitFor(ok.Load() + 200)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed, across 6 switches", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across the switches", failed.Load(), ok.Load()+failed.Load())
	}
}
