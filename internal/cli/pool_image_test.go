package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// TestImagePool: where moat pool image builds is the master's word on
// the pool, each flag given replacing one value; without the master the
// flags must say it all.
func TestImagePool(t *testing.T) {
	pools := []masterapi.Pool{
		{Name: "web", Provider: "hetzner", Types: []string{"cx22", "cx32"}, Regions: []string{"fsn1", "nbg1"}, Cluster: "c1"},
		{Name: "static", Provider: "static"},
		{Name: "bare", Provider: "digitalocean"},
		{Name: "faked", Provider: "digitalocean", Types: []string{"s-1vcpu-1gb"}, Endpoint: "http://127.0.0.1:9/"},
	}
	up := masterapi.NewClient(&http.Client{Transport: handlerTransport{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(pools)
	})}}, "master")
	down := masterapi.NewClient(&http.Client{Transport: handlerTransport{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"down"}`))
	})}}, "master")
	tests := []struct {
		name    string
		c       *masterapi.Client
		pool    string
		flags   map[string]string
		want    imageTarget
		known   bool
		wantErr error
	}{
		{"the master's word", up, "web", nil, imageTarget{provider: "hetzner", typ: "cx22", region: "fsn1", cluster: "c1"}, true, nil},
		{"flags replace", up, "web", map[string]string{"type": "cx42", "endpoint": "http://127.0.0.1:1"},
			imageTarget{provider: "hetzner", typ: "cx42", region: "fsn1", endpoint: "http://127.0.0.1:1", cluster: "c1"}, true, nil},
		{"unknown pool", up, "nope", nil, imageTarget{}, false, errs.ErrNotFound},
		{"unknown pool, flags", up, "new", map[string]string{"provider": "local", "type": "local-1"}, imageTarget{provider: "local", typ: "local-1"}, false, nil},
		{"master down", down, "web", nil, imageTarget{}, false, errs.ErrUnavailable},
		{"master down, flags", down, "web", map[string]string{"provider": "hetzner", "type": "cx22"}, imageTarget{provider: "hetzner", typ: "cx22"}, false, nil},
		{"static", up, "static", nil, imageTarget{}, true, errs.ErrInvalid},
		{"no type", up, "bare", nil, imageTarget{}, true, errs.ErrInvalid},
		{"the master's endpoint is not taken", up, "faked", nil, imageTarget{}, true, errs.ErrInvalid},
		{"the endpoint given", up, "faked", map[string]string{"endpoint": "http://127.0.0.1:9/"},
			imageTarget{provider: "digitalocean", typ: "s-1vcpu-1gb", endpoint: "http://127.0.0.1:9/"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flags imageTarget
			for k, v := range tt.flags {
				*map[string]*string{"provider": &flags.provider, "type": &flags.typ, "region": &flags.region, "endpoint": &flags.endpoint}[k] = v
			}
			changed := func(name string) bool { _, ok := tt.flags[name]; return ok }
			got, known, err := imagePool(context.Background(), tt.c, tt.pool, flags, changed)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || known != tt.known {
				t.Errorf("got %+v known %v err %v; want %+v known %v", got, known, err, tt.want, tt.known)
			}
		})
	}
}

// TestOperatorToken: the operator's token from the file, else the
// provider's usual variables; never empty for a cloud; none for local.
func TestOperatorToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte(" secret-from-file\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	t.Setenv("HCLOUD_TOKEN", "")
	t.Setenv("DIGITALOCEAN_TOKEN", "")
	t.Setenv("DIGITALOCEAN_ACCESS_TOKEN", "do-access")
	tests := []struct {
		kind, file, want string
		err              bool
	}{
		{"hetzner", file, "secret-from-file", false},
		{"hetzner", empty, "", true},
		{"hetzner", "", "", true},
		{"digitalocean", "", "do-access", false},
		{"local", "", "", false},
	}
	for _, tt := range tests {
		got, err := operatorToken(tt.kind, tt.file)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("operatorToken(%s, %q) = %q, %v; want %q, error %v", tt.kind, tt.file, got, err, tt.want, tt.err)
		}
	}
	t.Setenv("HCLOUD_TOKEN", "hc")
	if got, err := operatorToken("hetzner", ""); got != "hc" || err != nil {
		t.Errorf("from $HCLOUD_TOKEN: %q %v", got, err)
	}
}

func TestOperatorKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if _, err := sshkey.GenerateKey(key, "me@laptop"); err != nil {
		t.Fatal(err)
	}
	path, line, err := operatorKey(key)
	if err != nil || path != key || !strings.HasPrefix(line, "ssh-ed25519 ") || !strings.HasSuffix(line, " me@laptop") {
		t.Errorf("operatorKey(%s) = %q, %q, %v", key, path, line, err)
	}
	if _, _, err := operatorKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a key without .pub accepted")
	}
	restricted := filepath.Join(dir, "r")
	os.WriteFile(restricted+".pub", []byte(`command="id" `+line+"\n"), 0o644)
	if _, _, err := operatorKey(restricted); err == nil {
		t.Error("a key line with options accepted")
	}
	t.Setenv("HOME", dir)
	if _, _, err := operatorKey(""); err == nil || !strings.Contains(err.Error(), "-i KEY") {
		t.Errorf("no default key: %v", err)
	}
}
