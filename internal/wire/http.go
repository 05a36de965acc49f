package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// WriteError answers with the error's status and message. It reports
// whether the failure was the server's (status 500 and up), for logging.
func WriteError(w http.ResponseWriter, err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the client went away
	}
	status := errs.HTTPStatus(err)
	WriteJSON(w, status, ErrorBody{Error: err.Error()})
	return status >= 500
}

// Client calls a moat API. Its http.Client's transport decides how the
// server is reached (a unix socket, an SSH session).
type Client struct {
	HTTP *http.Client
	Base string // e.g. http://node
	What string // "node API", "master": named in connection errors
}

// UnixHTTP is an http.Client reaching a server on a unix socket.
func UnixHTTP(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second,
	}}
}

// Request sends a request; a response with an error status becomes an
// error of the matching kind.
func (c *Client) Request(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, DoError(c.What, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, ResponseError(resp)
	}
	return resp, nil
}

// ConnError is a failure a transport explained itself (an ssh session
// refused, and why): requests return it as it is, kind and all.
type ConnError struct{ Err error }

func (e *ConnError) Error() string { return e.Err.Error() }
func (e *ConnError) Unwrap() error { return e.Err }

// DoError is the error of a request that got no response: what the
// transport explained, else the server is unavailable.
func DoError(what string, err error) error {
	if ce := (*ConnError)(nil); errors.As(err, &ce) {
		return ce.Err
	}
	return fmt.Errorf("%s: %v: %w", what, err, errs.ErrUnavailable)
}

// ResponseError turns an error response into an error of its kind.
func ResponseError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
	}
	return errs.FromHTTP(resp.StatusCode, eb.Error)
}

// Call sends in as JSON (unless nil) and decodes the answer into out
// (unless nil).
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.Request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s %s: bad response: %w", c.What, method, path, err)
	}
	return nil
}

// Upload sends body as it is (an archive) and decodes the JSON answer.
func (c *Client) Upload(ctx context.Context, method, path string, body io.Reader, out any) error {
	resp, err := c.Request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s %s: bad response: %w", c.What, method, path, err)
	}
	return nil
}

// Stream reads a JSON-lines response into fn, one value per line.
func Stream[T any](ctx context.Context, resp *http.Response, fn func(T) error) error {
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("stream: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}
