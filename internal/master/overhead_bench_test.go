package master_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/masterapi"
)

// BenchmarkNodeOverhead: what a node costs besides its containers, with
// 100 of them placed by a master that holds it: the node daemon, the moat
// gate processes the master's sessions run, and their sshd session
// processes, by proportional set size (PSS). Goal: ≤ 40 MiB in all.
//
//	go test -run XXX -bench NodeOverhead -benchtime 1x ./internal/master
func BenchmarkNodeOverhead(b *testing.B) {
	e := benchEnv(b, 1, "cpus=32")
	ctx := context.Background()
	yaml := strings.Replace(spec("many", 100), "cpu: 100m, memory: 32Mi", "cpu: 100m, memory: 8Mi", 1)
	yaml = strings.Replace(yaml, "update: {deadline: 20s}", "update: {deadline: 3m, maxSurge: 100}", 1)
	yaml = strings.Replace(yaml, "interval: 200ms, timeout: 150ms, retries: 2", "interval: 2s, timeout: 1s, retries: 3", 1)
	r, err := e.m.Client.Deploy(ctx, masterapi.DeployRequest{Spec: yaml})
	if err != nil {
		b.Fatal(err)
	}
	waitDeployed(b, e, "many", r.Revision)
	time.Sleep(10 * time.Second) // settle: lease renewals, info refreshes, GC keep lists
	n, _ := e.c.Node("n1")
	out, err := exec.Command("ip", "netns", "pids", n.NetNS).Output()
	if err != nil {
		b.Fatal(err)
	}
	var daemon, gates, sessions float64
	var nGates, nSessions int
	for _, p := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(p)
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		switch {
		case strings.Contains(line, "moat node serve"):
			daemon += pssMiB(b, pid)
		case strings.Contains(line, "moat gate"):
			gates += pssMiB(b, pid)
			nGates++
		case strings.HasPrefix(line, "sshd: "):
			sessions += pssMiB(b, pid)
			nSessions++
		}
	}
	b.ReportMetric(daemon, "daemon-pss-MiB")
	b.ReportMetric(gates, "gates-pss-MiB")
	b.ReportMetric(float64(nGates), "gates")
	b.ReportMetric(sessions, "sshd-sessions-pss-MiB")
	b.ReportMetric(float64(nSessions), "sshd-sessions")
	b.ReportMetric(daemon+gates+sessions, "node-overhead-MiB")
	b.ReportMetric(0, "ns/op")
}

// pssMiB is a process's proportional set size.
func pssMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0 // gone meanwhile
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}
