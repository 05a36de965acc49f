package edge

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A minimal WebSocket (RFC 6455) for the tests: the opening handshake,
// and unfragmented text frames, masked from the client. Enough to hold a
// real upgraded connection through the proxy and exchange messages on it.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func wsWrite(w io.Writer, msg string, mask bool) error {
	b := []byte{0x81} // FIN, text
	n := len(msg)
	var m byte
	if mask {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	payload := []byte(msg)
	if mask {
		var k [4]byte
		rand.Read(k[:])
		b = append(b, k[:]...)
		for i := range payload {
			payload[i] ^= k[i%4]
		}
	}
	_, err := w.Write(append(b, payload...))
	return err
}

func wsRead(r *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	if h[0] != 0x81 {
		return "", fmt.Errorf("frame %#x: want a final text frame", h[0])
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return "", errors.New("frame too large")
	}
	var k [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, k[:]); err != nil {
			return "", err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return "", err
	}
	if masked {
		for i := range p {
			p[i] ^= k[i%4]
		}
	}
	return string(p), nil
}

// wsEcho is a WebSocket server answering each message with name: message.
func wsEcho(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want a websocket", http.StatusBadRequest)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		rw.Flush()
		for {
			msg, err := wsRead(rw.Reader)
			if err != nil {
				return
			}
			if wsWrite(c, name+": "+msg, false) != nil {
				return
			}
		}
	})
}

// wsClient is an open WebSocket through the edge.
type wsClient struct {
	c net.Conn
	r *bufio.Reader
}

func wsDial(t testing.TB, addr, host, path string) *wsClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, key)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("websocket handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("websocket handshake: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return &wsClient{c: c, r: r}
}

// roundTrip sends msg and returns the answer, within a deadline.
func (w *wsClient) roundTrip(msg string) (string, error) {
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wsWrite(w.c, msg, true); err != nil {
		return "", err
	}
	return wsRead(w.r)
}
