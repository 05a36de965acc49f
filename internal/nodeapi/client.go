package nodeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/moatcloud/moat/internal/errs"
)

// Client talks to one node daemon. The transport decides how: a unix
// socket on the node itself, or an SSH session through the gate.
type Client struct {
	http *http.Client
	base string
}

// NewClient uses hc, whose transport reaches the node whatever the URL's host.
func NewClient(hc *http.Client) *Client {
	return &Client{http: hc, base: "http://node"}
}

// UnixClient reaches the daemon listening on a unix socket.
func UnixClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second,
	}
	return NewClient(&http.Client{Transport: tr})
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node API: %v: %w", err, errs.ErrUnavailable)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

func responseError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
	}
	return errs.FromHTTP(resp.StatusCode, eb.Error)
}

// call sends in as JSON (unless nil) and decodes the answer into out
// (unless nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("node API %s %s: bad response: %w", method, path, err)
	}
	return nil
}

// Info describes the node.
func (c *Client) Info(ctx context.Context) (NodeInfo, error) {
	var info NodeInfo
	return info, c.call(ctx, http.MethodGet, "/v1/info", nil, &info)
}

// Images lists the node's images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	return out, c.call(ctx, http.MethodGet, "/v1/images", nil, &out)
}

// Image resolves one image reference.
func (c *Client) Image(ctx context.Context, ref string) (Image, error) {
	var out Image
	return out, c.call(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(ref), nil, &out)
}

// ImportImage uploads an OCI layout or docker save archive.
func (c *Client) ImportImage(ctx context.Context, archive io.Reader, name string) ([]Image, error) {
	resp, err := c.request(ctx, http.MethodPost, "/v1/images/import?name="+url.QueryEscape(name), archive)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []Image
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("import: bad response: %w", err)
	}
	return out, nil
}

// RemoveImage deletes an image reference.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.call(ctx, http.MethodDelete, "/v1/images/"+url.PathEscape(ref), nil, nil)
}

// CreateContainer creates a container and, if start, starts it.
func (c *Client) CreateContainer(ctx context.Context, spec ContainerSpec, start bool) (Container, error) {
	var out Container
	return out, c.call(ctx, http.MethodPost, fmt.Sprintf("/v1/containers?start=%t", start), spec, &out)
}

// Containers lists the node's containers.
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var out []Container
	return out, c.call(ctx, http.MethodGet, "/v1/containers", nil, &out)
}

// Container inspects one container.
func (c *Client) Container(ctx context.Context, id string) (Container, error) {
	var out Container
	return out, c.call(ctx, http.MethodGet, "/v1/containers/"+url.PathEscape(id), nil, &out)
}

// StartContainer starts a created or exited container.
func (c *Client) StartContainer(ctx context.Context, id string) (Container, error) {
	var out Container
	return out, c.call(ctx, http.MethodPost, "/v1/containers/"+url.PathEscape(id)+"/start", nil, &out)
}

// StopContainer stops a container; timeout nil means its own grace period.
func (c *Client) StopContainer(ctx context.Context, id string, timeout *time.Duration) (Container, error) {
	path := "/v1/containers/" + url.PathEscape(id) + "/stop"
	if timeout != nil {
		path += "?timeout=" + timeout.String()
	}
	var out Container
	return out, c.call(ctx, http.MethodPost, path, nil, &out)
}

// RemoveContainer deletes a container; force kills it first if running.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) error {
	return c.call(ctx, http.MethodDelete, fmt.Sprintf("/v1/containers/%s?force=%t", url.PathEscape(id), force), nil, nil)
}

// LogOptions select log lines.
type LogOptions struct {
	Follow bool
	Tail   int    // <0: all
	Since  string // RFC 3339 time or a duration ago
}

// Logs streams a container's output to fn until the end (or, following,
// until the container stops for good or ctx ends).
func (c *Client) Logs(ctx context.Context, id string, opts LogOptions, fn func(LogEntry) error) error {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail >= 0 {
		q.Set("tail", fmt.Sprint(opts.Tail))
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	resp, err := c.request(ctx, http.MethodGet, "/v1/containers/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("logs: bad line: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs: %w", err)
	}
	return ctx.Err()
}
