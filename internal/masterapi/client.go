package masterapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/wire"
)

// DefaultSocket is where the master listens.
const DefaultSocket = "/run/moat/master.sock"

// Client talks to the master.
type Client struct {
	wire.Client
}

// UnixClient reaches the master on its unix socket.
func UnixClient(socket string) *Client {
	return &Client{wire.Client{HTTP: wire.UnixHTTP(socket), Base: "http://master", What: "master"}}
}

func esc(s string) string { return url.PathEscape(s) }

// Ping checks the master answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, http.MethodGet, "/v1/ping", nil, nil)
}

// Deploy sends a spec; the master makes a revision and rolls it out.
func (c *Client) Deploy(ctx context.Context, req DeployRequest) (DeployResponse, error) {
	var out DeployResponse
	return out, c.Call(ctx, http.MethodPost, "/v1/apps", req, &out)
}

// Apps lists the apps.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out []App
	return out, c.Call(ctx, http.MethodGet, "/v1/apps", nil, &out)
}

// Revisions lists an app's revisions.
func (c *Client) Revisions(ctx context.Context, app string) ([]Revision, error) {
	var out []Revision
	return out, c.Call(ctx, http.MethodGet, "/v1/apps/"+esc(app)+"/revisions", nil, &out)
}

// Watch streams a revision's progress until its rollout is over.
func (c *Client) Watch(ctx context.Context, app string, rev int, fn func(Progress) error) error {
	resp, err := c.Request(ctx, http.MethodGet, fmt.Sprintf("/v1/apps/%s/revisions/%d/progress?watch=true", esc(app), rev), nil)
	if err != nil {
		return err
	}
	return wire.Stream(ctx, resp, fn)
}

// Scale sets an app's replica count.
func (c *Client) Scale(ctx context.Context, app string, n int) (DeployResponse, error) {
	var out DeployResponse
	return out, c.Call(ctx, http.MethodPost, "/v1/apps/"+esc(app)+"/scale", ScaleRequest{Replicas: n}, &out)
}

// Rollback goes back to a revision (0: the previous deployed one).
func (c *Client) Rollback(ctx context.Context, app string, rev int) (DeployResponse, error) {
	var out DeployResponse
	return out, c.Call(ctx, http.MethodPost, "/v1/apps/"+esc(app)+"/rollback", RollbackRequest{Revision: rev}, &out)
}

// Promote lets a canary revision go on.
func (c *Client) Promote(ctx context.Context, app string) error {
	return c.Call(ctx, http.MethodPost, "/v1/apps/"+esc(app)+"/promote", nil, nil)
}

// RemoveApp deletes an app and stops its replicas.
func (c *Client) RemoveApp(ctx context.Context, app string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/apps/"+esc(app), nil, nil)
}

// Replicas lists replicas, of one app or all ("").
func (c *Client) Replicas(ctx context.Context, app string) ([]Replica, error) {
	var out []Replica
	return out, c.Call(ctx, http.MethodGet, "/v1/replicas?app="+url.QueryEscape(app), nil, &out)
}

// Logs streams an app's logs, merged across replicas.
func (c *Client) Logs(ctx context.Context, app string, opts nodeapi.LogOptions, fn func(LogLine) error) error {
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
	resp, err := c.Request(ctx, http.MethodGet, "/v1/apps/"+esc(app)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	return wire.Stream(ctx, resp, fn)
}

// Nodes lists the nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	return out, c.Call(ctx, http.MethodGet, "/v1/nodes", nil, &out)
}

// RegisterNode records an enrolled node.
func (c *Client) RegisterNode(ctx context.Context, n NewNode) error {
	return c.Call(ctx, http.MethodPost, "/v1/nodes", n, nil)
}

// RemoveNode forgets a node.
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/nodes/"+esc(name), nil, nil)
}

// NodeVerb cordons, uncordons or drains a node.
func (c *Client) NodeVerb(ctx context.Context, name, verb string) error {
	return c.Call(ctx, http.MethodPost, "/v1/nodes/"+esc(name)+"/"+verb, nil, nil)
}

// Audit asks a node, through the master, what it exposes.
func (c *Client) Audit(ctx context.Context, name string) (nodeapi.AuditReport, error) {
	var out nodeapi.AuditReport
	return out, c.Call(ctx, http.MethodGet, "/v1/nodes/"+esc(name)+"/audit", nil, &out)
}

// Dial connects to a container's declared port on a node, through the
// master and the node's gate.
func (c *Client) Dial(ctx context.Context, node, container string, port int) (io.ReadWriteCloser, error) {
	return c.upgrade(ctx, fmt.Sprintf("/v1/nodes/%s/dial?container=%s&port=%d", esc(node), url.QueryEscape(container), port))
}

// DialApp connects to a port of a ready replica of an app.
func (c *Client) DialApp(ctx context.Context, app string, port int) (io.ReadWriteCloser, error) {
	return c.upgrade(ctx, fmt.Sprintf("/v1/apps/%s/dial?port=%d", esc(app), port))
}

func (c *Client) upgrade(ctx context.Context, path string) (io.ReadWriteCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", nodeapi.UpgradeProtocol)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, wire.DoError(c.What, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, wire.ResponseError(resp)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, fmt.Errorf("dial: the connection cannot be upgraded")
	}
	return rwc, nil
}

// Images lists the master's images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	return out, c.Call(ctx, http.MethodGet, "/v1/images", nil, &out)
}

// ImportImage uploads an image archive into the master's store.
func (c *Client) ImportImage(ctx context.Context, archive io.Reader, name string) ([]nodeapi.Image, error) {
	var out []nodeapi.Image
	return out, c.Upload(ctx, http.MethodPost, "/v1/images/import?name="+url.QueryEscape(name), archive, &out)
}

// RemoveImage deletes an image reference (refused while a revision uses it).
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.Call(ctx, http.MethodDelete, "/v1/images/"+esc(ref), nil, nil)
}

// Key returns the master's public key.
func (c *Client) Key(ctx context.Context) (Key, error) {
	var out Key
	return out, c.Call(ctx, http.MethodGet, "/v1/key", nil, &out)
}

// AddSignature attaches an image signature (armored sshsig) to an image in
// the master's store; the master checks it signs that image.
func (c *Client) AddSignature(ctx context.Context, ref string, armored []byte) (nodeapi.Image, error) {
	var out nodeapi.Image
	return out, c.Call(ctx, http.MethodPost, "/v1/signatures/"+esc(ref), SignRequest{Signature: string(armored)}, &out)
}

// Image resolves an image in the master's store by name or digest.
func (c *Client) Image(ctx context.Context, ref string) (nodeapi.Image, error) {
	var out nodeapi.Image
	return out, c.Call(ctx, http.MethodGet, "/v1/images/"+esc(ref), nil, &out)
}

// GC collects unused images on the master and its nodes.
func (c *Client) GC(ctx context.Context, req GCRequest) ([]GCReport, error) {
	var out []GCReport
	return out, c.Call(ctx, http.MethodPost, "/v1/images/gc", req, &out)
}

// Stats returns the master's image traffic counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	return out, c.Call(ctx, http.MethodGet, "/v1/stats", nil, &out)
}
