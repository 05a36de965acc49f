package cli_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/remote"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// BenchmarkRemotePS: `moat ps`, the real binary, against a master on
// another machine through the operator's ssh, and on the master's own
// socket, interleaved in the same run: the p50 of each, and the remote
// ones' extra cost and ratio. Remote twice: on the shared SSH connection
// moat keeps up (ControlMaster: a command costs a session on it, sshd
// starting moat api, its relay), and with a new SSH connection per
// command (ControlMaster=no: a handshake and authentication too). On the
// test's own link (a bridge: no latency to speak of), then through a
// relay adding 20 ms of round trip, where the extra cost's growth over
// 20 ms is how many round trips a remote command costs.
//
//	go test -run '^$' -bench RemotePS -benchtime 30x ./internal/cli
func BenchmarkRemotePS(b *testing.B) {
	h := testcluster.NewMasterHost(b, 2) // n3 is newOperator's bastion, unused here
	alice := h.AddUser("alice", "admin@*")
	o := newOperator(b, h, alice).with("MOAT_MASTER=moat@" + h.Addr) // direct: no bastion
	// Without the keeper's ready session: a new session on the shared
	// connection per command.
	noKeeper := o.with(remote.NoKeeperEnv + "=0")
	// ssh takes an option's first value: these win over moat's own.
	fresh := noKeeper.with("MOAT_SSH_COMMAND=ssh -F " + o.config + " -o ControlMaster=no -o ControlPath=none")
	local := append(os.Environ(), "MOAT_MASTER=local", "MOAT_MASTER_SOCKET="+h.Master.Socket)
	run := func(b *testing.B, env []string) time.Duration {
		cmd := exec.Command(testcluster.Moat(b), "ps")
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("moat ps: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	// 20 ms of round trip: a relay delaying each direction by 10 ms.
	relay := testcluster.NewRelay(b, h.Addr+":22", testcluster.Link{Delay: 10 * time.Millisecond})
	hostKey := sshkey.AuthorizedKey(h.HostKey(h.Name))
	o.setKnown(h.Addr+" "+hostKey, "["+strings.Replace(relay.Addr, ":", "]:", 1)+" "+hostKey)
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run("rtt="+rtt.String(), func(b *testing.B) {
			o, noKeeper, fresh := o, noKeeper, fresh
			if rtt > 0 {
				via := "MOAT_MASTER=moat@" + relay.Addr
				o, noKeeper, fresh = o.with(via), noKeeper.with(via), fresh.with(via)
			}
			// Warm: the shared connection comes up, the binary is in
			// the page cache.
			run(b, o.env)
			run(b, noKeeper.env)
			run(b, fresh.env)
			run(b, local)
			var kept, shared, perCommand, direct []time.Duration
			b.ResetTimer()
			for range b.N {
				direct = append(direct, run(b, local))
				kept = append(kept, run(b, o.env))
				shared = append(shared, run(b, noKeeper.env))
				perCommand = append(perCommand, run(b, fresh.env))
			}
			b.StopTimer()
			l, k, s, f := p50(direct), p50(kept), p50(shared), p50(perCommand)
			b.ReportMetric(ms(l), "local-p50-ms")
			b.ReportMetric(ms(k), "remote-p50-ms")
			b.ReportMetric(ms(k-l), "remote-extra-ms")
			b.ReportMetric(float64(k)/float64(l), "remote/local")
			b.ReportMetric(ms(s), "newsession-p50-ms")
			b.ReportMetric(ms(f), "newconn-p50-ms")
			b.Logf("moat ps p50 over %d runs each, round trip +%v: local %v; remote: the keeper's ready session %v (+%v, ×%.1f), a new session on the shared SSH connection %v (+%v), a new SSH connection %v (+%v)",
				b.N, rtt, round(l), round(k), round(k-l), float64(k)/float64(l), round(s), round(s-l), round(f), round(f-l))
		})
	}
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
