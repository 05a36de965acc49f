package gate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestServeSFTPEnds: when the client goes, ServeSFTP returns (nil for a
// clean end) and leaves no goroutine and no open file behind, even with
// handles still open.
func TestServeSFTPEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		leaveOpen bool
		wantErr   error
	}{
		{"clean", false, nil},
		{"handles left open", true, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			session := func() {
				env := newSFTPEnv(t, 0)
				env.plant(t)
				blob, part := blobName(10), partName(11)
				if err := put(env.c, blob, []byte("blob")); err != nil {
					t.Fatal(err)
				}
				if _, err := env.c.ReadDir("/blobs"); err != nil {
					t.Fatal(err)
				}
				if tc.leaveOpen {
					f, err := env.c.Create(part)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.Write([]byte("half")); err != nil {
						t.Fatal(err)
					}
					if _, err := env.c.Open(bFile); err != nil {
						t.Fatal(err)
					}
					if _, err := env.c.OpenFile(blob, os.O_RDWR); err != nil {
						t.Fatal(err)
					}
					if _, err := env.c.ReadDir("/"); err != nil {
						t.Fatal(err)
					}
				}
				env.c.Close()
				err := env.wait(t)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Errorf("ServeSFTP: %v, want %v", err, tc.wantErr)
				}
				if tc.leaveOpen {
					b, err := os.ReadFile(filepath.Join(env.inbox, part))
					if string(b) != "half" {
						t.Errorf("partial upload: %q %v, want it kept for resuming", b, err)
					}
				}
			}
			session() // warm up: the runtime opens its poller once
			fds, goroutines := countFDs(t), runtime.NumGoroutine()
			session()
			waitGoroutines(t, goroutines)
			if n := countFDs(t); n > fds {
				t.Errorf("%d open files after the session, %d before", n, fds)
			}
		})
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(fds)
}

// waitGoroutines polls until no more than n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > n {
		select {
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		case <-tick.C:
		}
	}
}

// TestSFTPRawPackets sends what no well-behaved client sends and checks
// the status that comes back.
func TestSFTPRawPackets(t *testing.T) {
	inbox := filepath.Join(t.TempDir(), "inbox")
	srv, cli := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeSFTP(srv, inbox, 1<<20) }()
	defer func() {
		cli.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeSFTP: %v", err)
		}
	}()
	c := rawConn{t, cli}
	c.send(1, u32(3)) // init, version 3
	if typ, _ := c.recv(); typ != 2 {
		t.Fatalf("init: reply type %d, want version", typ)
	}
	// mkdir "blobs", no attributes: OK
	c.send(14, u32(1), str("blobs"), u32(0))
	if typ, body := c.recv(); typ != 101 || len(body) < 8 || binary.BigEndian.Uint32(body[4:]) != 0 {
		t.Fatalf("mkdir blobs: reply type %d %q, want status 0", typ, body)
	}
	blob := blobName(1)
	// open blob write|create: handle
	c.send(3, u32(2), str(blob), u32(0x0a), u32(0))
	typ, body := c.recv()
	if typ != 102 {
		t.Fatalf("open: reply type %d, want a handle", typ)
	}
	handle := body[4:]

	for _, tc := range []struct {
		name     string
		typ      byte
		fields   [][]byte
		wantCode uint32
	}{
		{"setstat without attributes", 9, [][]byte{u32(3), str(blob), u32(1)}, 3},
		{"fsetstat without attributes", 10, [][]byte{u32(4), handle, u32(4)}, 3},
		{"setstat the mode of blobs", 9, [][]byte{u32(5), str("blobs"), u32(4), u32(0o755)}, 3},
		{"fsetstat the size", 10, [][]byte{u32(6), handle, u32(1), u64(1 << 30)}, 3},
		{"open another name", 3, [][]byte{u32(7), str("blob"), u32(0x0a), u32(0)}, 3},
		{"mkdir another name", 14, [][]byte{u32(8), str("blobs/x"), u32(0)}, 3},
		{"write at offset 2^63", 6, [][]byte{u32(9), handle, u64(1 << 63), str("x")}, 4},
		{"write after the discard", 6, [][]byte{u32(10), handle, u64(0), str("x")}, 4},
		{"symlink", 20, [][]byte{u32(11), str("/etc"), str(blobName(2))}, 3},
		{"unknown handle", 6, [][]byte{u32(12), str("nope"), u64(0), str("x")}, 4},
		{"close", 4, [][]byte{u32(13), handle}, 4},
	} {
		c.send(tc.typ, tc.fields...)
		typ, body := c.recv()
		if typ != 101 || len(body) < 8 || binary.BigEndian.Uint32(body[4:]) != tc.wantCode {
			t.Errorf("%s: reply type %d %q, want status %d", tc.name, typ, body, tc.wantCode)
		}
	}
	for _, name := range []string{blob, blobName(2), "blob", "blobs/x"} {
		if _, err := os.Lstat(filepath.Join(inbox, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: left behind: %v", name, err)
		}
	}
}

type rawConn struct {
	t *testing.T
	c net.Conn
}

func (c rawConn) send(typ byte, fields ...[]byte) {
	body := append([]byte{typ}, bytes.Join(fields, nil)...)
	if _, err := c.c.Write(append(u32(uint32(len(body))), body...)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c rawConn) recv() (byte, []byte) {
	var n uint32
	if err := binary.Read(c.c, binary.BigEndian, &n); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.c, b); err != nil || n == 0 {
		c.t.Fatalf("recv: %d bytes, %v", n, err)
	}
	return b[0], b[1:]
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func str(s string) []byte { return append(u32(uint32(len(s))), s...) }
