package edge

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestRouteStats: each route host counts its requests on both paths
// (lean, and ReverseProxy for upgrades), its errors (5xx, and requests no
// replica answered) and the time to the answer's head; the maximum
// starts again at each read; a host that leaves the table leaves the
// stats.
func TestRouteStats(t *testing.T) {
	bk := newBackends()
	slow := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond) // the latency measured
		}
		w.Write([]byte("ok"))
	}))
	bk.set("web", 80, slow)
	bk.set("chat", 80, serveBackend(t, wsEcho("chat")))
	s, addr := startEdge(t, Config{Dial: bk.Dial})
	table := Table{Routes: []Route{
		{Host: "web.test", App: "web", Port: 80},
		{Host: "web.test", Path: "/api", App: "web", Port: 80},
		{Host: "*.down.test", App: "gone", Port: 80},
		{Host: "chat.test", App: "chat", Port: 80},
	}}
	if err := s.SetTable(table); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/api/x", "/fail", "/slow"} {
		get(t, addr, "web.test", p)
	}
	if code, _ := get(t, addr, "a.down.test", "/"); code != http.StatusBadGateway {
		t.Fatalf("route without replica: %d", code)
	}
	ws := wsDial(t, addr, "chat.test", "/")
	if got, err := ws.roundTrip("hi"); err != nil || got != "chat: hi" {
		t.Fatalf("websocket: %q, %v", got, err)
	}
	get(t, addr, "nothing.test", "/") // no route: counted nowhere

	st := s.RouteStats()
	web := st["web.test"]
	if web.Requests != 4 || web.Errors != 1 || web.LatencyMax < 50*time.Millisecond || web.LatencySum < web.LatencyMax || web.LatencySum > 10*time.Second {
		t.Errorf("web.test: %+v; want 4 requests (both routes), 1 error, the slowest over 50ms", web)
	}
	if down := st["*.down.test"]; down.Requests != 1 || down.Errors != 1 {
		t.Errorf("*.down.test: %+v; want 1 request, 1 error", down)
	}
	if chat := st["chat.test"]; chat.Requests != 1 || chat.Errors != 0 {
		t.Errorf("chat.test: %+v; want the upgrade counted once", chat)
	}
	if len(st) != 3 {
		t.Errorf("stats of %d hosts, want 3: %v", len(st), st)
	}
	if again := s.RouteStats()["web.test"]; again.LatencyMax != 0 || again.Requests != 4 {
		t.Errorf("second read %+v; want the same count and the maximum started again", again)
	}
	// A new table keeps the counters of hosts that stay, drops the rest.
	table.Routes = table.Routes[:2]
	if err := s.SetTable(table); err != nil {
		t.Fatal(err)
	}
	get(t, addr, "web.test", "/")
	st = s.RouteStats()
	if len(st) != 1 || st["web.test"].Requests != 5 {
		t.Errorf("after the table changed: %v; want web.test alone, at 5", st)
	}
}

// TestHostStatsConcurrent: counts from many goroutines add up, and the
// maximum is the largest.
func TestHostStatsConcurrent(t *testing.T) {
	var h hostStats
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.done(start.Add(-time.Duration(g*1000+i)), 200+300*(i%2))
			}
		}()
	}
	wg.Wait()
	if h.requests.Load() != 8000 || h.errors.Load() != 4000 || h.maxNs.Load() < 7999 {
		t.Errorf("requests %d errors %d max %d", h.requests.Load(), h.errors.Load(), h.maxNs.Load())
	}
}

// BenchmarkRouteStatsDone is what counting costs a request: a clock read
// and the atomic adds, alone and from every CPU at once on one host's
// counters (the worst case: one busy route). Compare with
// BenchmarkEdge's edge-cpu-us/req.
func BenchmarkRouteStatsDone(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		var h hostStats
		for b.Loop() {
			h.done(time.Now(), 200)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var h hostStats
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.done(time.Now(), 200)
			}
		})
	})
}
