package secret

import (
	"bytes"
	"strings"
	"testing"

	"filippo.io/age"
)

func mustKeys(t testing.TB) Keys {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKeys(t)
	b := Binding{Tenant: "default", App: "web", Name: "db_password", Version: 3}
	env, err := Seal(b, []byte("hunter2\n"), k.Sealing())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("hunter2")) || bytes.Contains(env, []byte("db_password")) {
		t.Fatal("the envelope shows its value or name in the clear")
	}
	got, value, err := Open(env, k)
	if err != nil {
		t.Fatal(err)
	}
	if got != b || string(value) != "hunter2\n" {
		t.Fatalf("opened %+v %q, want %+v hunter2", got, value, b)
	}
	// Rotation: the new key seals, the old one still opens what it sealed.
	next := mustKeys(t)
	rotated := k.Rotated(next.Sealing())
	if _, _, err := Open(env, rotated); err != nil {
		t.Fatalf("after rotation the old envelope: %v", err)
	}
	if _, _, err := Open(env, next); err == nil || !strings.Contains(err.Error(), "no secrets key") {
		t.Fatalf("another cluster's key opened it: %v", err)
	}
	back, err := ParseKeys(rotated.Marshal())
	if err != nil || len(back) != 2 || back.Recipient() != next.Recipient() {
		t.Fatalf("key file round trip: %v %v", back, err)
	}
}

// The master knows the public key (recipient) but not the identity: an
// envelope it makes to the recipient, binding any value to any app, fails
// the MAC.
func TestForgedEnvelopeRefused(t *testing.T) {
	k := mustKeys(t)
	plain := header(Binding{Tenant: "default", App: "web", Name: "x", Version: 1}, 3)
	plain = append(plain, "abc"...)
	plain = append(plain, make([]byte, macSize)...)
	var out bytes.Buffer
	w, _ := age.Encrypt(&out, k.Sealing().Recipient())
	w.Write(plain)
	w.Close()
	if _, _, err := Open(out.Bytes(), k); err == nil || !strings.Contains(err.Error(), "MAC") {
		t.Fatalf("forged envelope: %v, want a MAC failure", err)
	}
}

func TestSealRefuses(t *testing.T) {
	k := mustKeys(t)
	for _, b := range []Binding{
		{Tenant: "", App: "web", Name: "a", Version: 1},
		{Tenant: "default", App: "Web", Name: "a", Version: 1},
		{Tenant: "default", App: "web", Name: "../etc", Version: 1},
		{Tenant: "default", App: "web", Name: ".hidden", Version: 1},
		{Tenant: "default", App: "web", Name: "a", Version: 0},
	} {
		if _, err := Seal(b, []byte("v"), k.Sealing()); err == nil {
			t.Errorf("sealed %+v", b)
		}
	}
	if _, err := Seal(Binding{Tenant: "default", App: "web", Name: "a", Version: 1}, make([]byte, MaxValue+1), k.Sealing()); err == nil {
		t.Error("sealed a value over the limit")
	}
}

func TestParsePlain(t *testing.T) {
	good := append(header(Binding{Tenant: "t", App: "a", Name: "n", Version: 1}, 2), "xy"...)
	good = append(good, make([]byte, macSize)...)
	if _, v, _, err := parsePlain(good); err != nil || string(v) != "xy" {
		t.Fatalf("good: %q %v", v, err)
	}
	for name, p := range map[string]string{
		"empty":        "",
		"magic":        "moat-secret 2\n",
		"order":        "moat-secret 1\napp a\ntenant t\n",
		"version sign": "moat-secret 1\ntenant t\napp a\nname n\nversion +1\nsize 0\n\n",
		"size big":     "moat-secret 1\ntenant t\napp a\nname n\nversion 1\nsize 99999999\n\n",
		"short":        "moat-secret 1\ntenant t\napp a\nname n\nversion 1\nsize 5\n\nab",
		"no blank":     "moat-secret 1\ntenant t\napp a\nname n\nversion 1\nsize 0\nx",
	} {
		if _, _, _, err := parsePlain([]byte(p)); err == nil {
			t.Errorf("%s: parsed %q", name, p)
		}
	}
}

func TestParseAppRef(t *testing.T) {
	for in, want := range map[string]string{"web": "default/web", "acme/web": "acme/web", "Web": "", "a/b/c": "", "/web": "", "acme/": ""} {
		got, err := ParseAppRef(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}
