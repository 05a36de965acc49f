package secret

import (
	"testing"
)

// FuzzParsePlain: whatever decrypts, the parser returns an error or a
// binding that validates and a value of the size it declares.
func FuzzParsePlain(f *testing.F) {
	good := append(header(Binding{Tenant: "default", App: "web", Name: "db", Version: 2}, 3), "abc"...)
	f.Add(append(good, make([]byte, macSize)...))
	f.Add([]byte("moat-secret 1\ntenant t\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, value, sum, err := parsePlain(p)
		if err != nil {
			return
		}
		if b.Validate() != nil || len(sum) != macSize || len(value) > MaxValue {
			t.Fatalf("accepted %+v value %d mac %d", b, len(value), len(sum))
		}
	})
}

// FuzzOpen: arbitrary envelopes (the master's to choose) never open
// without the MAC, and never panic.
func FuzzOpen(f *testing.F) {
	k, err := GenerateKeys()
	if err != nil {
		f.Fatal(err)
	}
	env, _ := Seal(Binding{Tenant: "default", App: "web", Name: "db", Version: 1}, []byte("v"), k.Sealing())
	f.Add(env)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 x\n"))
	f.Fuzz(func(t *testing.T, envelope []byte) {
		b, _, err := Open(envelope, k)
		if err == nil && b.Validate() != nil {
			t.Fatalf("opened an invalid binding %+v", b)
		}
	})
}
