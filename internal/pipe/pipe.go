// Package pipe joins two connections: bytes flow both ways, the end of
// one side's input is passed on as a half-close where the other side can
// take one, and a broken side ends both.
package pipe

import (
	"io"
	"net"
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
	n, err := copyData(dst, src)
	if err != nil {
		closeBoth()
		return n
	}
	if cw, ok := dst.(CloseWriter); ok {
		cw.CloseWrite()
	}
	return n
}

// copyData is io.Copy where the kernel can splice (TCP to TCP). Elsewhere
// it reads 32 KiB at a time, as io.Copy does, until a read fills the
// buffer: a bulk transfer, which then goes on with 256 KiB. Framing layers
// (SSH channels, yamux streams) pay per write, and with 32 KiB writes a
// link carried half of ssh -L's throughput; an idle or interactive
// connection keeps the small buffer.
func copyData(dst io.Writer, src io.Reader) (int64, error) {
	_, tcpDst := dst.(*net.TCPConn)
	_, tcpSrc := src.(*net.TCPConn)
	if tcpDst && tcpSrc {
		return io.Copy(dst, src)
	}
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w != n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
		if n == len(buf) && len(buf) < bulkBuffer {
			buf = make([]byte, bulkBuffer)
		}
	}
}

const bulkBuffer = 256 << 10
