package nodeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/wire"
)

// Client talks to one node daemon. The transport decides how: a unix
// socket on the node itself, or an SSH session through the gate.
type Client struct {
	wire.Client
}

// NewClient uses hc, whose transport reaches the node whatever the URL's host.
func NewClient(hc *http.Client) *Client {
	return &Client{wire.Client{HTTP: hc, Base: "http://node", What: "node API"}}
}

// UnixClient reaches the daemon listening on a unix socket.
func UnixClient(socket string) *Client { return NewClient(wire.UnixHTTP(socket)) }

// Info describes the node.
func (c *Client) Info(ctx context.Context) (NodeInfo, error) {
	var info NodeInfo
	return info, c.Call(ctx, http.MethodGet, "/v1/info", nil, &info)
}

// Images lists the node's images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	return out, c.Call(ctx, http.MethodGet, "/v1/images", nil, &out)
}

// Image resolves one image reference.
func (c *Client) Image(ctx context.Context, ref string) (Image, error) {
	var out Image
	return out, c.Call(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(ref), nil, &out)
}

// AddSignature keeps a signature with an image (it must sign that image;
// whether its key is trusted, the node's allowed signers say).
func (c *Client) AddSignature(ctx context.Context, ref string, armored []byte) (Image, error) {
	var out Image
	return out, c.Call(ctx, http.MethodPost, "/v1/signatures/"+url.PathEscape(ref), SignRequest{Signature: string(armored)}, &out)
}

// ImportImage uploads an OCI layout or docker save archive.
func (c *Client) ImportImage(ctx context.Context, archive io.Reader, name string) ([]Image, error) {
	var out []Image
	return out, c.Upload(ctx, http.MethodPost, "/v1/images/import?name="+url.QueryEscape(name), archive, &out)
}

// RemoveImage deletes an image reference.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/images/"+url.PathEscape(ref), nil, nil)
}

// CreateContainer creates a container and, if start, starts it.
func (c *Client) CreateContainer(ctx context.Context, spec ContainerSpec, start bool) (Container, error) {
	var out Container
	return out, c.Call(ctx, http.MethodPost, fmt.Sprintf("/v1/containers?start=%t", start), spec, &out)
}

// Containers lists the node's containers.
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var out []Container
	return out, c.Call(ctx, http.MethodGet, "/v1/containers", nil, &out)
}

// Container inspects one container.
func (c *Client) Container(ctx context.Context, id string) (Container, error) {
	var out Container
	return out, c.Call(ctx, http.MethodGet, "/v1/containers/"+url.PathEscape(id), nil, &out)
}

// StartContainer starts a created or exited container.
func (c *Client) StartContainer(ctx context.Context, id string) (Container, error) {
	var out Container
	return out, c.Call(ctx, http.MethodPost, "/v1/containers/"+url.PathEscape(id)+"/start", nil, &out)
}

// StopContainer stops a container; timeout nil means its own grace period.
func (c *Client) StopContainer(ctx context.Context, id string, timeout *time.Duration) (Container, error) {
	path := "/v1/containers/" + url.PathEscape(id) + "/stop"
	if timeout != nil {
		path += "?timeout=" + timeout.String()
	}
	var out Container
	return out, c.Call(ctx, http.MethodPost, path, nil, &out)
}

// RemoveContainer deletes a container; force kills it first if running.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) error {
	return c.Call(ctx, http.MethodDelete, fmt.Sprintf("/v1/containers/%s?force=%t", url.PathEscape(id), force), nil, nil)
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
	resp, err := c.Request(ctx, http.MethodGet, "/v1/containers/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	return wire.Stream(ctx, resp, fn)
}

// SetKeep tells the node which images to keep through garbage collection.
func (c *Client) SetKeep(ctx context.Context, keep []string) error {
	return c.Call(ctx, http.MethodPut, "/v1/images/keep", KeepRequest{Keep: keep}, nil)
}

// GC collects the node's unused images.
func (c *Client) GC(ctx context.Context, req GCRequest) (GCResult, error) {
	var out GCResult
	return out, c.Call(ctx, http.MethodPost, "/v1/images/gc", req, &out)
}

// Fetch has the node fetch blobs from a peer; fn sees its progress.
func (c *Client) Fetch(ctx context.Context, req FetchRequest, fn func(FetchProgress)) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	resp, err := c.Request(ctx, http.MethodPost, "/v1/blobs/fetch", bytes.NewReader(b))
	if err != nil {
		return err
	}
	var last FetchProgress
	err = wire.Stream(ctx, resp, func(p FetchProgress) error {
		last = p
		fn(p)
		return nil
	})
	switch {
	case err != nil:
		return err
	case last.Error != "":
		return fmt.Errorf("fetch from %s: %s", req.Peer.Name, last.Error)
	case !last.Done:
		return fmt.Errorf("fetch from %s: the node stopped answering: %w", req.Peer.Name, errs.ErrUnavailable)
	}
	return nil
}
