package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// handleDebug runs a node tool in a running container's namespaces and
// streams its stdio over the upgraded connection (see nodeapi.stream).
func (d *Daemon) handleDebug(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Upgrade"), nodeapi.UpgradeProtocol) {
		return errs.Invalid("header Upgrade", "want %q", nodeapi.UpgradeProtocol)
	}
	var req nodeapi.DebugRequest
	if err := nodeapi.Decode(r.Body, &req); err != nil {
		return err
	}
	if len(req.Args) == 0 || req.Args[0] == "" {
		return errs.Invalid("args", "no program to run")
	}
	c, err := d.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	pid, state := c.rec.InitPid, c.rec.State
	c.mu.Unlock()
	if state != nodeapi.StateRunning {
		return fmt.Errorf("container %q is %s, not running: %w", c.rec.ID, state, errs.ErrConflict)
	}
	if _, err := exec.LookPath(req.Args[0]); err != nil {
		return errs.Invalid("args[0]", "%q is not a program on the node", req.Args[0])
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("debug: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", nodeapi.UpgradeProtocol)
	fw := nodeapi.NewFrameWriter(conn)
	stdinR, stdinW := io.Pipe()
	cmd, err := runtime.StartDebug(pid, d.cfg.Exe, req.Args, stdinR, fw.Writer(nodeapi.FrameStdout), fw.Writer(nodeapi.FrameStderr))
	if err != nil {
		fw.WriteFrame(nodeapi.FrameError, []byte(err.Error()))
		return nil
	}
	d.log.Info("debug session", "container", c.rec.ID, "args", req.Args)
	done := make(chan struct{})
	go pumpStdin(brw, stdinW, cmd, done)
	code := exitCode(cmd.Wait())
	close(done)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	fw.WriteFrame(nodeapi.FrameExit, b[:])
	return nil
}

// pumpStdin feeds client frames to the tool; when the client goes away the
// session ends (unless it already has: its process group may be reused).
func pumpStdin(r io.Reader, stdin *io.PipeWriter, cmd *exec.Cmd, done <-chan struct{}) {
	for {
		typ, payload, err := nodeapi.ReadFrame(r)
		if err != nil {
			stdin.Close()
			select {
			case <-done:
			default:
				runtime.KillDebug(cmd)
			}
			return
		}
		switch typ {
		case nodeapi.FrameStdin:
			stdin.Write(payload)
		case nodeapi.FrameStdinClose:
			stdin.Close()
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return code
		}
		return 128 + 9
	}
	return 127
}
