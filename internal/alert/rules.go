package alert

import (
	"fmt"
	"math"
	"time"
)

// The default rules. Each returns its conditions; Evaluate judges them
// against the alerts before.

// nodeDown: a node whose connection is down. Held while it reconnects
// and for NodeUpClear after it is up again, so a node that flaps is one
// alert.
func nodeDown(s Snapshot) []condition {
	var out []condition
	for _, n := range s.Nodes {
		c := condition{Alert: Alert{Rule: NodeDown, Key: NodeDown + "/" + n.Name, Severity: Critical, Node: n.Name,
			Since: n.Since, Value: s.Now.Sub(n.Since).Seconds()}}
		switch {
		case n.State == "down":
			c.level = Fire
			c.Summary = fmt.Sprintf("node %s is down", n.Name)
		case n.State == "connecting" || n.State == "up" && s.Now.Sub(n.Since) < NodeUpClear:
			c.level = Hold
			c.Summary = fmt.Sprintf("node %s was down", n.Name)
		case n.State == "up":
			continue
		default:
			c.level = Unknown // not watched (yet): the master is starting
		}
		out = append(out, c)
	}
	return out
}

// crashLoop: a replica that restarted CrashLoopRestarts times or more and
// whose last run was shorter than StableRun, while it waits to restart
// (or is down for good). Held while a new run is younger than
// CrashLoopClear.
func crashLoop(s Snapshot) []condition {
	var out []condition
	for _, r := range s.Replicas {
		var c condition
		shortRun := !r.Finished.IsZero() && !r.Started.After(r.Finished) && r.Finished.Sub(r.Started) < StableRun
		switch {
		case !r.Known:
			c.level = Unknown
		case r.Restarts < CrashLoopRestarts:
			continue
		case (r.State == "restarting" || r.State == "exited") && shortRun:
			c.level = Fire
		case r.State == "running" && s.Now.Sub(r.Started) < CrashLoopClear, r.State == "restarting" || r.State == "exited" || r.State == "created":
			c.level = Hold
		default:
			continue
		}
		c.Alert = Alert{Rule: CrashLoop, Key: CrashLoop + "/" + r.ID, Severity: Critical, App: r.App, Node: r.Node, Replica: r.ID,
			Value:   float64(r.Restarts), // Since: first seen
			Summary: fmt.Sprintf("replica %s of %s on %s is crash-looping (%d restarts)", r.ID, r.App, r.Node, r.Restarts)}
		out = append(out, c)
	}
	return out
}

// restarts: a replica that restarted the app's Restarts threshold times
// within RestartsWindow; held at half of it.
func restarts(s Snapshot) []condition {
	th := thresholds(s)
	var out []condition
	for _, r := range s.Replicas {
		n, limit := 0, th[r.App].restarts()
		var first time.Time
		for _, t := range r.RestartTimes {
			if s.Now.Sub(t) < RestartsWindow && !t.After(s.Now) {
				if n == 0 || t.Before(first) {
					first = t
				}
				n++
			}
		}
		var level Level
		switch {
		case !r.Known:
			level = Unknown
		case n >= limit:
			level = Fire
		case n > 0 && n >= (limit+1)/2:
			level = Hold
		default:
			continue
		}
		out = append(out, condition{level: level, Alert: Alert{Rule: Restarts, Key: Restarts + "/" + r.ID, Severity: Warning, App: r.App, Node: r.Node, Replica: r.ID,
			Value: float64(n), Since: first,
			Summary: fmt.Sprintf("replica %s of %s on %s restarted %d times in the last hour (threshold %d)", r.ID, r.App, r.Node, n, limit)}})
	}
	return out
}

// oomKill: a replica whose last run the kernel killed for memory, for
// OOMWindow after it.
func oomKill(s Snapshot) []condition {
	var out []condition
	for _, r := range s.Replicas {
		if !r.Known {
			out = append(out, unknown(OOMKill+"/"+r.ID))
			continue
		}
		if !r.OOMKilled || r.Finished.IsZero() || s.Now.Sub(r.Finished) >= OOMWindow {
			continue
		}
		out = append(out, condition{level: Fire, Alert: Alert{Rule: OOMKill, Key: OOMKill + "/" + r.ID, Severity: Warning, App: r.App, Node: r.Node, Replica: r.ID,
			Value: 1, Since: r.Finished,
			Summary: fmt.Sprintf("replica %s of %s on %s was killed for using more memory than its limit", r.ID, r.App, r.Node)}})
	}
	return out
}

// diskFull: a node's state filesystem fuller than DiskPercent; held down
// to DiskPercent - Hysteresis.
func diskFull(s Snapshot) []condition {
	var out []condition
	for _, n := range s.Nodes {
		if !fresh(n.SampledAt, s.Now, n.DiskUsed, n.DiskTotal) {
			out = append(out, unknown(DiskFull+"/"+n.Name))
			continue
		}
		if n.DiskTotal <= 0 {
			continue
		}
		pct := 100 * n.DiskUsed / n.DiskTotal
		if level := percentLevel(pct, DiskPercent); level != 0 {
			out = append(out, condition{level: level, Alert: Alert{Rule: DiskFull, Key: DiskFull + "/" + n.Name, Severity: Critical, Node: n.Name, Value: round1(pct), Since: n.SampledAt,
				Summary: fmt.Sprintf("node %s's disk is %.1f%% full (threshold %d%%)", n.Name, pct, DiskPercent)}})
		}
	}
	return out
}

// memoryNearLimit: a replica using more than its app's memory threshold of
// its limit for MemoryFor; held down to the threshold - Hysteresis.
func memoryNearLimit(s Snapshot) []condition {
	th := thresholds(s)
	var out []condition
	for _, r := range s.Replicas {
		if !r.Known || !fresh(r.SampledAt, s.Now, r.Mem, r.MemLimit) {
			out = append(out, unknown(MemoryNearLimit+"/"+r.ID))
			continue
		}
		if r.MemLimit <= 0 {
			continue
		}
		pct, limit := 100*r.Mem/r.MemLimit, th[r.App].memoryPercent()
		if level := percentLevel(pct, limit); level != 0 {
			out = append(out, condition{level: level, forTime: MemoryFor, Alert: Alert{Rule: MemoryNearLimit, Key: MemoryNearLimit + "/" + r.ID, Severity: Warning,
				App: r.App, Node: r.Node, Replica: r.ID, Value: round1(pct), Since: r.SampledAt,
				Summary: fmt.Sprintf("replica %s of %s on %s uses %.1f%% of its memory limit (threshold %.0f%%)", r.ID, r.App, r.Node, pct, limit)}})
		}
	}
	return out
}

// failedDeploy: an app whose last deploy failed, until the next deploy.
func failedDeploy(s Snapshot) []condition {
	var out []condition
	for _, a := range s.Apps {
		if a.FailedRevision == 0 {
			continue
		}
		summary := fmt.Sprintf("app %s: revision %d failed", a.Name, a.FailedRevision)
		if a.RolledBackTo > 0 {
			summary += fmt.Sprintf(" and was rolled back to revision %d", a.RolledBackTo)
		}
		out = append(out, condition{level: Fire, Alert: Alert{Rule: FailedDeploy, Key: FailedDeploy + "/" + a.Name, Severity: Critical, App: a.Name,
			Value: float64(a.FailedRevision), Since: a.FailedAt, Summary: summary}})
	}
	return out
}

// certExpiring: a certificate that expires within CertDays (or has);
// held for a day more, until it is renewed.
func certExpiring(s Snapshot) []condition {
	var out []condition
	for _, c := range s.Certs {
		left := c.NotAfter.Sub(s.Now)
		days := left.Hours() / 24
		x := condition{Alert: Alert{Rule: CertExpiring, Key: CertExpiring + "/" + c.Name, Severity: Warning, App: c.App, Value: round1(days),
			Since:   c.NotAfter.Add(-CertDays * 24 * time.Hour),
			Summary: fmt.Sprintf("certificate %s expires %s (in %.1f days)", c.Name, c.NotAfter.UTC().Format(time.RFC3339), days)}}
		switch {
		case left <= 0:
			x.level, x.Severity = Fire, Critical
			x.Summary = fmt.Sprintf("certificate %s expired %s", c.Name, c.NotAfter.UTC().Format(time.RFC3339))
		case days < CertDays:
			x.level = Fire
		case days < CertDays+1:
			x.level = Hold
		default:
			continue
		}
		out = append(out, x)
	}
	return out
}

// percentLevel: Fire past limit, Hold past limit - Hysteresis, else 0.
func percentLevel(pct, limit float64) Level {
	switch {
	case pct > limit:
		return Fire
	case pct > limit-Hysteresis:
		return Hold
	}
	return 0
}

func thresholds(s Snapshot) map[string]Thresholds {
	m := make(map[string]Thresholds, len(s.Apps))
	for _, a := range s.Apps {
		m[a.Name] = a.Thresholds
	}
	return m
}

// unknown is a condition not known now: its alert stays as it was.
func unknown(key string) condition { return condition{level: Unknown, Alert: Alert{Key: key}} }

func round1(f float64) float64 { return math.Round(f*10) / 10 }
