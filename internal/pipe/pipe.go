// Package pipe joins two connections: bytes flow both ways, the end of
// one side's input is passed on as a half-close where the other side can
// take one, and a broken side ends both.
package pipe

import (
	"io"
	"sync"
)

// CloseWriter is a connection whose sending half can be closed alone
// (TCP, unix sockets, SSH sessions, yamux streams wrapped for it).
type CloseWriter interface{ CloseWrite() error }

// Join copies a to b and b to a until both directions have ended, then
// closes both. When one side's input ends (EOF), the other is told with
// CloseWrite, and its answer still flows back; where it cannot be told, the
// other direction goes on until it ends by itself. An error in either
// direction closes both at once, ending the other copy too. It returns the
// bytes copied a→b and b→a.
func Join(a, b io.ReadWriteCloser) (ab, ba int64) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	defer closeBoth()
	done := make(chan int64, 1)
	go func() { done <- half(b, a, closeBoth) }()
	ba = half(a, b, closeBoth)
	return <-done, ba
}

// half copies src to dst, then passes the end on.
func half(dst io.Writer, src io.Reader, closeBoth func()) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		closeBoth()
		return n
	}
	if cw, ok := dst.(CloseWriter); ok {
		cw.CloseWrite()
	}
	return n
}
