package gate_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkLinkMux: one connection's throughput to a container's port on
// the node, through a stream of a held `ssh ... mux` session with a link
// key, against the same bytes through `ssh ... dial` with the master's
// key (the gate splicing the session to the port: no mux), on the same
// path and the same sink. Only the bytes are timed, not the sessions'
// setup: the first MiB goes untimed, once the session carries bytes.
// MB/s is the figure to compare.
//
//	go test -run '^$' -bench LinkMux -benchtime 10x ./internal/gate
func BenchmarkLinkMux(b *testing.B) {
	c, link := linkNode(b)
	master := newAttacker(b, c, "n1")
	const size = 256 << 20
	chunk := []byte(strings.Repeat("x", 1<<20))
	send := func(b *testing.B, conn interface {
		io.ReadWriter
		SetDeadline(time.Time) error
	}, closeWrite func() error) {
		conn.SetDeadline(time.Now().Add(2 * time.Minute))
		b.StopTimer()
		if _, err := conn.Write(chunk); err != nil {
			b.Fatalf("write: %v", err)
		}
		b.StartTimer()
		for sent := len(chunk); sent < size; sent += len(chunk) {
			if _, err := conn.Write(chunk); err != nil {
				b.Fatalf("write: %v", err)
			}
		}
		closeWrite()
		got, err := io.ReadAll(conn)
		if want := fmt.Sprintf("ok %d\n", size); string(got) != want {
			b.Fatalf("the sink answered %q, %v; want %q", got, err, want)
		}
	}
	b.Run("mux", func(b *testing.B) {
		mux := dialMux(b, link)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			s, err := linkOpen(b, mux, "db-1\n")
			if err != nil {
				b.Fatal(err)
			}
			send(b, s, s.Close)
		}
	})
	b.Run("dial", func(b *testing.B) {
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			conn, err := testcluster.DialSSH(context.Background(), exec.Command("ssh", append(master.opts(), "root@"+master.addr, "dial db-1:5432")...))
			if err != nil {
				b.Fatal(err)
			}
			send(b, conn, conn.(interface{ CloseWrite() error }).CloseWrite)
			b.StopTimer()
			conn.Close()
		}
	})
}

// BenchmarkLinkOpen: the setup of one link connection on a held mux
// session, warm: a stream opened, its container looked up at the node
// daemon, connected in its network namespace, "ok" read back. p50 and
// p99 in µs, as the bar (≤ 1 ms p50 once warm) is put.
//
//	go test -run '^$' -bench LinkOpen -benchtime 500x ./internal/gate
func BenchmarkLinkOpen(b *testing.B) {
	_, link := linkNode(b)
	mux := dialMux(b, link)
	for range 10 { // warm: the daemon's connection, the sink's goroutines
		if s, err := linkOpen(b, mux, "db-1\n"); err == nil {
			s.Close()
		}
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s, err := linkOpen(b, mux, "db-1\n")
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		s.Close()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
