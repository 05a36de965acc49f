package masterhost_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
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
	"github.com/moatcloud/moat/internal/userauth"
)

// BenchmarkAuthorizedKeysCommand is what sshd waits for at each login
// attempt: the real moat binary run as `moat api keys USER TYPE KEY`
// against a master holding 10,000 users, each with a key. It reports the
// answer time's p50 and p99 (exec to exit) for a known key and for an
// unknown one; and how long a revocation takes there: from `moat user rm`
// (the API call) to the end of that user's open session on the api
// socket, as moat api sees it.
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
	var keys []string
	start := time.Now()
	for i := range users {
		s, err := sshkey.GenerateKey(filepath.Join(dir, "k"), "u")
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "k"))
		os.Remove(filepath.Join(dir, "k.pub"))
		keys = append(keys, sshkey.AuthorizedKey(s.PublicKey()))
		if _, err := m.Client.AddUser(ctx, masterapi.NewUser{Name: fmt.Sprintf("user%05d", i), Keys: []string{keys[i]}}); err != nil {
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
		{"known", keys[users-1], fmt.Sprintf("user%05d", users-1)},
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
			reportPercentiles(b, times)
		})
	}
	// Each round removes one more user (from the first): at most b.N of
	// the 10,000 go.
	b.Run("revoke", func(b *testing.B) {
		var times []time.Duration
		i := 0
		for b.Loop() {
			name := fmt.Sprintf("user%05d", i)
			conn, br := openAPISession(b, sock, name, keys[i])
			t0 := time.Now()
			if err := m.Client.RemoveUser(ctx, name); err != nil {
				b.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, br); err != nil {
				b.Fatalf("%s's session after moat user rm: %v", name, err)
			}
			times = append(times, time.Since(t0))
			conn.Close()
			i++
		}
		reportPercentiles(b, times)
	})
}

// openAPISession opens a session on the api socket as moat api does for
// a login with key.
func openAPISession(b *testing.B, sock, user, key string) (net.Conn, *bufio.Reader) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	if err := userauth.WritePreamble(conn, userauth.Preamble{Kind: userauth.KindSession, User: user, Auth: "publickey " + key + "\n"}); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if err := userauth.ReadVerdict(br); err != nil {
		b.Fatalf("a session of %s: %v", user, err)
	}
	return conn, br
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
