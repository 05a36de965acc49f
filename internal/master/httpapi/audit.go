package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/wire"
)

// AuditControl is the master's hash-chained audit log.
type AuditControl interface {
	// AppendAudit chains an entry; an error means it may not be kept.
	AppendAudit(ctx context.Context, e masterapi.AuditEntry) (masterapi.AuditEntry, error)
	AuditLog(ctx context.Context, q masterapi.AuditQuery) ([]masterapi.AuditEntry, error)
	// VerifyAudit checks the chain, and against recorded heads.
	VerifyAudit(ctx context.Context, recorded ...masterapi.AuditHead) (masterapi.AuditVerification, error)
}

func init() {
	routeActions["GET /v1/audit"] = access.AuditRead
	routeActions["GET /v1/audit/verify"] = access.AuditRead
}

func (s *server) auditRoutes(handle handleFunc) {
	handle("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		aq := masterapi.AuditQuery{Since: q.Get("since"), User: q.Get("user"), App: q.Get("app")}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				return errs.Invalid("query limit", "%q: want a number of entries", l)
			}
			aq.Limit = n
		}
		entries, err := s.cp.AuditLog(r.Context(), aq)
		return reply(w, entries, err)
	})
	handle("GET /v1/audit/verify", func(w http.ResponseWriter, r *http.Request) error {
		var recorded []masterapi.AuditHead
		if h := r.URL.Query().Get("head"); h != "" {
			head, err := masterapi.ParseAuditHead(h)
			if err != nil {
				return err
			}
			recorded = append(recorded, head)
		}
		v, err := s.cp.VerifyAudit(r.Context(), recorded...)
		return reply(w, v, err)
	})
}

// audited appends every mutating request to the audit log, allowed or
// refused: its intent before anything is done (if that cannot be
// written, the request fails with 503 and nothing is done), then its
// outcome when the handler returns — for a dial, when the connection
// ends. It wraps authorisation, so refusals are recorded too.
func (s *server) audited(route string, h handler) handler {
	method, _, _ := strings.Cut(route, " ")
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return h
	}
	action := auditAction(route)
	return func(w http.ResponseWriter, r *http.Request) error {
		c, _ := access.CallerFrom(r.Context())
		target, detail := describeRequest(route, r)
		if c.Tenant != "" && c.Tenant != "default" {
			detail = strings.TrimSuffix("tenant "+c.Tenant+"; "+detail, "; ")
		}
		e := masterapi.AuditEntry{User: c.User, Credential: c.Credential, Action: action, Target: target, Detail: detail, Result: "started"}
		intent, err := s.cp.AppendAudit(r.Context(), e)
		if err != nil {
			return fmt.Errorf("%s %s: not done, the audit log cannot record it: %w: %w", action, target, err, errs.ErrUnavailable)
		}
		rec := &recorder{ResponseWriter: w}
		err = h(rec, r)
		e.Result, e.Detail, e.Intent = outcome(err, rec), rec.detail(), intent.Seq
		// The outcome is written even when the client went away.
		if _, aerr := s.cp.AppendAudit(context.WithoutCancel(r.Context()), e); aerr != nil {
			s.log.Error("audit outcome not recorded", "intent", intent.Seq, "action", action, "target", target, "result", e.Result, "err", aerr)
		}
		return err
	}
}

// outcome is the result an outcome entry records.
func outcome(err error, rec *recorder) string {
	switch {
	case err != nil && errs.HTTPStatus(err) == http.StatusForbidden:
		return "refused: " + err.Error()
	case err != nil:
		return "failed: " + err.Error()
	case rec.status >= 400:
		return fmt.Sprintf("failed: HTTP %d", rec.status)
	}
	return "ok"
}

// auditActions name the routes' actions as operators say them; other
// routes are named from their path (auditAction).
var auditActions = map[string]string{
	"POST /v1/apps":                  "deploy",
	"DELETE /v1/apps/{app}":          "rm",
	"POST /v1/apps/{app}/scale":      "scale",
	"POST /v1/apps/{app}/rollback":   "rollback",
	"POST /v1/apps/{app}/promote":    "promote",
	"POST /v1/apps/{app}/dial":       "dial",
	"POST /v1/nodes":                 "node add",
	"DELETE /v1/nodes/{node}":        "node rm",
	"POST /v1/nodes/{node}/cordon":   "node cordon",
	"POST /v1/nodes/{node}/uncordon": "node uncordon",
	"POST /v1/nodes/{node}/drain":    "node drain",
	"POST /v1/nodes/{node}/dial":     "node dial",
	"POST /v1/images/import":         "image import",
	"POST /v1/signatures/{ref...}":   "image sign",
	"DELETE /v1/images/{ref...}":     "image rm",
	"POST /v1/images/gc":             "image gc",
}

// auditAction names a route's action: "PUT /v1/apps/{app}/secrets/{name}"
// is "apps secrets set".
func auditAction(route string) string {
	if a, ok := auditActions[route]; ok {
		return a
	}
	method, path, _ := strings.Cut(route, " ")
	var words []string
	for _, w := range strings.Split(strings.TrimPrefix(path, "/v1/"), "/") {
		if w != "" && !strings.HasPrefix(w, "{") {
			words = append(words, w)
		}
	}
	verb := map[string]string{http.MethodPost: "add", http.MethodPut: "set", http.MethodPatch: "change", http.MethodDelete: "rm"}[method]
	return strings.Join(append(words, verb), " ")
}

// describeRequest is what a request names: its target (the app, node or
// image) and details. Small JSON bodies of known routes are read ahead
// (and given back to the handler unread); others only from the path and
// query.
func describeRequest(route string, r *http.Request) (target, detail string) {
	var details []string
	for _, name := range wildcards(route) {
		v := r.PathValue(name)
		switch {
		case target == "" && (name == "app" || name == "node" || name == "ref" || name == "pool"):
			target = v
		default:
			details = append(details, name+" "+v)
		}
	}
	q := r.URL.Query()
	switch route {
	case "POST /v1/apps":
		var req masterapi.DeployRequest
		if peekJSON(r, &req) {
			target = specName(req.Spec)
			sum := sha256.Sum256([]byte(req.Spec))
			details = append(details, fmt.Sprintf("file %s spec sha256:%s", req.File, hex.EncodeToString(sum[:6])))
		}
	case "POST /v1/apps/{app}/scale":
		var req masterapi.ScaleRequest
		if peekJSON(r, &req) {
			details = append(details, fmt.Sprintf("replicas %d", req.Replicas))
		}
	case "POST /v1/apps/{app}/rollback":
		var req masterapi.RollbackRequest
		if peekJSON(r, &req) && req.Revision > 0 {
			details = append(details, fmt.Sprintf("to revision %d", req.Revision))
		}
	case "POST /v1/nodes":
		var req masterapi.NewNode
		if peekJSON(r, &req) {
			target = req.Name
			details = append(details, "addr "+req.Addr)
		}
	case "POST /v1/pools/scale":
		var req masterapi.PoolScale
		if peekJSON(r, &req) {
			for _, p := range slices.Sorted(maps.Keys(req.Desired)) {
				details = append(details, fmt.Sprintf("%s=%d", p, req.Desired[p]))
			}
		}
	case "POST /v1/images/gc":
		var req masterapi.GCRequest
		if peekJSON(r, &req) && req.DryRun {
			details = append(details, "dry run")
		}
	case "POST /v1/images/import":
		target = q.Get("name")
	case "POST /v1/apps/{app}/dial", "POST /v1/nodes/{node}/dial":
		if c := q.Get("container"); c != "" {
			details = append(details, "container "+c)
		}
		details = append(details, "port "+q.Get("port"))
	default:
		// A route of its own (users, tenants): a top-level "name".
		var named struct {
			Name string `json:"name"`
		}
		if target == "" && len(details) == 0 && peekJSON(r, &named) {
			target = named.Name
		}
	}
	return target, strings.Join(details, "; ")
}

// wildcards are the names of a route pattern's wildcards, in order.
func wildcards(route string) []string {
	var out []string
	for _, seg := range strings.Split(route, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

// peekJSON decodes a JSON request body into v, leniently, and gives the
// body back to the handler whole; false when it is not JSON or too big.
func peekJSON(r *http.Request, v any) bool {
	if r.Body == nil || strings.HasPrefix(r.Header.Get("Content-Type"), "application/octet-stream") {
		return false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxRequestBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
	return err == nil && len(data) <= wire.MaxRequestBytes && json.Unmarshal(data, v) == nil
}

// specName is an app spec's name, read leniently: a spec the master
// then refuses is still recorded under its name.
func specName(spec string) string {
	var s struct {
		Name string `yaml:"name"`
	}
	if yaml.Unmarshal([]byte(spec), &s) != nil {
		return ""
	}
	return s.Name
}

// recorder keeps the status a handler answered with and, for a small
// JSON answer naming a revision, that revision.
type recorder struct {
	http.ResponseWriter
	status int
	head   []byte // the start of the body
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if n := min(len(p), 4096-len(r.head)); n > 0 {
		r.head = append(r.head, p[:n]...)
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection (dial's
// upgrade).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// detail is what the answer says worth keeping: the revision a deploy,
// scale or rollback made.
func (r *recorder) detail() string {
	var resp masterapi.DeployResponse
	if r.status >= 300 || json.Unmarshal(r.head, &resp) != nil || resp.Revision == 0 {
		return ""
	}
	if resp.Image != "" {
		return fmt.Sprintf("revision %d image %s", resp.Revision, resp.Image)
	}
	return fmt.Sprintf("revision %d", resp.Revision)
}
