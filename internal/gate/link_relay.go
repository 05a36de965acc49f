package gate

import (
	"context"
	"io"
	"net"
	"sync"
)

// linkBuffers are the relay's copy buffers: large enough that a stream's
// frames are big (few headers and writes on the session), pooled so that
// a connection's end frees its two for the next one.
var linkBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// halfCloser is a connection whose write side can end alone.
type halfCloser interface {
	io.ReadWriter
	CloseWrite() error
}

// relayStream copies both ways between a mux stream and the container's
// connection until both directions are done, passing each end on: when
// the stream's peer closes (a yamux FIN), the container reads EOF and may
// still answer; when the container closes its side, the stream's Close
// (yamux's FIN, a half-close) tells the peer, whose remaining input still
// flows. A direction that fails ends with its writer's error. When ctx
// ends (the session is gone) everything is closed at once.
func relayStream(ctx context.Context, stream io.ReadWriteCloser, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close(); stream.Close() })
	defer stop()
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyBuffered(conn, stream)
		if hc, ok := conn.(halfCloser); ok {
			hc.CloseWrite()
		} else {
			conn.Close()
		}
	}()
	copyBuffered(stream, conn)
	stream.Close()
	<-done
}

func copyBuffered(dst io.Writer, src io.Reader) {
	b := linkBuffers.Get().(*[]byte)
	defer linkBuffers.Put(b)
	io.CopyBuffer(writerOnly{dst}, readerOnly{src}, *b)
}

// readerOnly hides a reader's WriteTo, so io.CopyBuffer uses its buffer.
type readerOnly struct{ io.Reader }
