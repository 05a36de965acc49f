package master

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/moatcloud/moat/internal/spec"
)

// TestTemplateSecrets: a new version of a secret reloaded by restart is a
// new template (the replicas roll); of one reloaded by signal it is not
// (the file is replaced in place); an app without secrets hashes as
// before secrets existed.
func TestTemplateSecrets(t *testing.T) {
	base := spec.App{Name: "web", Image: "web:1", Replicas: 2}
	withSecrets := func(dbVersion, tlsVersion int) spec.App {
		a := base
		a.Secrets = []spec.Secret{{Name: "db", Version: dbVersion}, {Name: "tls", Reload: spec.ReloadSignal, Signal: "SIGHUP", Version: tlsVersion}}
		return a
	}
	const image = "sha256:00"
	if template(base, image) == template(withSecrets(1, 1), image) {
		t.Fatal("secrets do not change the template")
	}
	// The template as it was hashed before secrets existed.
	old := struct {
		Image     string
		Command   []string
		Args      []string
		Env       map[string]string
		Resources spec.Resources
		Ports     []spec.Port
		Health    *spec.Health
		Placement spec.Placement
		Restart   string
		Volumes   []spec.Volume
		Singleton bool
		Security  *spec.Security `json:",omitempty"`
	}{Image: image, Resources: base.Resources, Placement: base.Placement}
	b, _ := json.Marshal(old)
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:6]); template(base, image) != want {
		t.Errorf("an app without secrets: template %s, was %s: every replica would restart", template(base, image), want)
	}
	for _, tt := range []struct {
		name     string
		a, b     spec.App
		sameTmpl bool
	}{
		{"restart secret, new version", withSecrets(1, 1), withSecrets(2, 1), false},
		{"signal secret, new version", withSecrets(1, 1), withSecrets(1, 2), true},
		{"same versions", withSecrets(3, 4), withSecrets(3, 4), true},
		{"no secrets", base, base, true},
	} {
		if got := template(tt.a, image) == template(tt.b, image); got != tt.sameTmpl {
			t.Errorf("%s: same template %v, want %v", tt.name, got, tt.sameTmpl)
		}
	}
}
