package nodeapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/wire"
)

// Debug runs args (a program on the node) in a running container's
// namespaces, wiring its stdio to the given streams, and returns its exit
// code. stdin may be nil.
func (c *Client) Debug(ctx context.Context, id string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return DebugAt(ctx, &c.Client, "/v1/containers/"+url.PathEscape(id)+"/debug", args, stdin, stdout, stderr)
}

// DebugAt runs a debug session at path of an API that speaks the debug
// protocol: the node's, or the master's, which passes it through.
func DebugAt(ctx context.Context, c *wire.Client, path string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	body, err := json.Marshal(DebugRequest{Args: args})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", UpgradeProtocol)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("debug: %v: %w", err, errs.ErrUnavailable)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return 0, wire.ResponseError(resp)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return 0, errors.New("debug: the connection cannot be upgraded")
	}
	defer conn.Close()
	fw := NewFrameWriter(conn)
	if stdin != nil {
		go func() {
			io.Copy(fw.Writer(FrameStdin), stdin)
			fw.WriteFrame(FrameStdinClose, nil)
		}()
	} else {
		fw.WriteFrame(FrameStdinClose, nil)
	}
	go func() { <-ctx.Done(); conn.Close() }()
	for {
		typ, payload, err := ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("debug: session ended without an exit status: %w", err)
		}
		switch typ {
		case FrameStdout:
			stdout.Write(payload)
		case FrameStderr:
			stderr.Write(payload)
		case FrameError:
			return 0, fmt.Errorf("debug: %s", payload)
		case FrameExit:
			if len(payload) != 4 {
				return 0, errors.New("debug: malformed exit frame")
			}
			return int(int32(binary.BigEndian.Uint32(payload))), nil
		}
	}
}
