package masterhost_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkAuthorizedKeysCommand is what sshd waits for at each login
// attempt: the real moat binary run as `moat api keys USER TYPE KEY`
// against a master holding 10,000 users, each with a key. It reports the
// answer time's p50 and p99 (exec to exit) for a known key and for an
// unknown one.
//
//	sudo go test -run '^$' -bench AuthorizedKeysCommand -benchtime 400x ./internal/masterhost/
func BenchmarkAuthorizedKeysCommand(b *testing.B) {
	testcluster.RequireRoot(b)
	dir := b.TempDir()
	keyPath := filepath.Join(dir, "master_ed25519")
	if _, err := sshkey.GenerateKey(keyPath, "moat-master"); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "api", "api.sock")
	// The api user is root here: this machine has no moat user, and the
	// lookup is the same for any.
	m := testcluster.StartMaster(b, keyPath, "--api-socket", sock, "--api-user", "root", "--user-ca-file", filepath.Join(dir, "user_ca_keys"))
	ctx := context.Background()
	const users = 10000
	var last string
	start := time.Now()
	for i := range users {
		s, err := sshkey.GenerateKey(filepath.Join(dir, "k"), "u")
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "k"))
		os.Remove(filepath.Join(dir, "k.pub"))
		last = sshkey.AuthorizedKey(s.PublicKey())
		if _, err := m.Client.AddUser(ctx, masterapi.NewUser{Name: fmt.Sprintf("user%05d", i), Keys: []string{last}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d users added in %v", users, time.Since(start).Round(time.Millisecond))
	unknown, err := sshkey.GenerateKey(filepath.Join(dir, "unknown"), "unknown")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, want string
	}{
		{"known", last, "user09999"},
		{"unknown", sshkey.AuthorizedKey(unknown.PublicKey()), ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := strings.Fields(tc.key)
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				cmd := exec.Command(testcluster.Moat(b), "api", "keys", "moat", f[0], f[1])
				cmd.Env = append(os.Environ(), "MOAT_API_SOCKET="+sock)
				out, err := cmd.Output()
				times = append(times, time.Since(t0))
				if err != nil {
					b.Fatalf("moat api keys: %v", err)
				}
				if tc.want == "" && len(out) != 0 || tc.want != "" && !strings.Contains(string(out), "api --user "+tc.want+`" `+tc.key) {
					b.Fatalf("moat api keys answered %q", out)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
