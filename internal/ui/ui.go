// Package ui is moat's dashboard: a read-only web view of the cluster
// built from the master API alone, through a masterapi.Client, so it shows
// exactly what the operator running it may see. Pages are rendered on the
// server with html/template, graphs are SVG drawn in Go (MRTG's day, week,
// month and year views: the average over a min–max band), and every asset
// is embedded: no script, no CDN, it works offline. What apps print is
// hostile: it only ever reaches a page escaped, under a Content-Security-
// Policy that allows no script at all.
package ui

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

//go:embed assets
var assets embed.FS

// csp allows the page's own stylesheet and images and nothing else: no
// script of any origin, no inline style, no frames, no forms.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard.
type Handler struct {
	c     *masterapi.Client
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
	now   func() time.Time
	// timeout bounds what one page asks of the master.
	timeout time.Duration
}

// New returns the dashboard, reading from the master through c.
func New(c *masterapi.Client, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{c: c, log: log, mux: http.NewServeMux(), pages: parsePages(), now: time.Now, timeout: 20 * time.Second}
	static, _ := fs.Sub(assets, "assets/static")
	files := http.FileServerFS(static)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	h.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/favicon.svg"
		files.ServeHTTP(w, r)
	})
	h.mux.HandleFunc("GET /{$}", h.overview)
	h.mux.HandleFunc("GET /nodes/{name}", h.node)
	h.mux.HandleFunc("GET /apps/{name}", h.app)
	h.mux.HandleFunc("GET /graphs/{kind}/{name}/{graph}", h.graph)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusNotFound, "error", errorPage{Title: "Not found", Now: h.now(), Message: "There is no page at " + r.URL.Path + "."})
	})
	return h
}

// ServeHTTP sets the headers every answer carries and serves the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// parsePages builds one template set per page, each with the layout.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"ago":   func(t time.Time) string { return ago(t, time.Now()) },
		"stamp": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"clock": func(t time.Time) string { return t.Local().Format("Jan 2 15:04:05") },
		"short": shortDigest,
		"bytes": func(n int64) string { return formatValue(float64(n), "bytes") },
	}
	out := map[string]*template.Template{}
	for _, p := range []string{"overview", "node", "app", "graph", "error"} {
		out[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/svg.html", "assets/"+p+".html"))
	}
	return out
}

// render writes a page whole, or a plain error if it cannot be rendered:
// a template that fails halfway never leaves half a page.
func (h *Handler) render(w http.ResponseWriter, status int, page string, data any) {
	var b bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		h.log.Error("render page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// errorPage is a page that says what went wrong.
type errorPage struct {
	Title   string
	Now     time.Time
	Message string
}

// fail renders err as a page with the status of its kind.
func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	status := statusOf(err)
	h.render(w, status, "error", errorPage{Title: http.StatusText(status), Now: h.now(), Message: what + ": " + err.Error()})
}

func (h *Handler) context(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}
