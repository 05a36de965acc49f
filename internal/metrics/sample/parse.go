package sample

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The parsers below are pure functions over a file's bytes. The files are
// the kernel's, but a container's cgroup files are written by the kernel on
// behalf of code the node does not trust, and a fixture may hold anything:
// every parser checks what it reads, never panics, and is fuzzed.

var errFormat = errors.New("unexpected format")

// CPUTimes are the machine's CPU times from /proc/stat's aggregate "cpu"
// line, in USER_HZ ticks: Busy is everything but idle and iowait; CPUs is
// how many cpuN lines follow.
type CPUTimes struct {
	Busy, Total uint64
	CPUs        int
}

// ParseStat reads /proc/stat.
func ParseStat(b []byte) (CPUTimes, error) {
	var t CPUTimes
	found := false
	for line := range lines(b) {
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		name, rest, _ := bytes.Cut(line, []byte(" "))
		if len(name) == 3 { // the aggregate
			fields := bytes.Fields(rest)
			if len(fields) < 4 {
				return CPUTimes{}, fmt.Errorf("/proc/stat cpu line: %d fields: %w", len(fields), errFormat)
			}
			for i, f := range fields {
				if i >= 8 { // guest and guest_nice are already in user and nice
					break
				}
				v, err := strconv.ParseUint(string(f), 10, 64)
				if err != nil {
					return CPUTimes{}, fmt.Errorf("/proc/stat cpu field %d: %w", i, err)
				}
				t.Total += v
				if i != 3 && i != 4 { // idle, iowait
					t.Busy += v
				}
			}
			found = true
			continue
		}
		if _, err := strconv.Atoi(string(name[3:])); err == nil {
			t.CPUs++
		}
	}
	if !found || t.CPUs == 0 {
		return CPUTimes{}, fmt.Errorf("/proc/stat: no cpu line or no cpuN lines: %w", errFormat)
	}
	return t, nil
}

// Cores is how many cores were busy on average between two readings; NaN
// when the counters went backwards or did not move.
func Cores(prev, cur CPUTimes) float64 {
	if cur.Total <= prev.Total || cur.Busy < prev.Busy || cur.CPUs == 0 {
		return nan
	}
	return float64(cur.Busy-prev.Busy) / float64(cur.Total-prev.Total) * float64(cur.CPUs)
}

// ParseLoadavg reads /proc/loadavg's one-minute load.
func ParseLoadavg(b []byte) (float64, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, fmt.Errorf("/proc/loadavg: empty: %w", errFormat)
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("/proc/loadavg %q: %w", f[0], errFormat)
	}
	return v, nil
}

// ParseMeminfo reads /proc/meminfo's MemTotal and MemAvailable, in bytes.
func ParseMeminfo(b []byte) (total, available uint64, err error) {
	var haveT, haveA bool
	for line := range lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "MemTotal":
			dst, haveT = &total, true
		case "MemAvailable":
			dst, haveA = &available, true
		default:
			continue
		}
		f := bytes.Fields(v)
		if len(f) < 1 {
			return 0, 0, fmt.Errorf("/proc/meminfo %s: no value: %w", k, errFormat)
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil || n > 1<<53 {
			return 0, 0, fmt.Errorf("/proc/meminfo %s %q: %w", k, f[0], errFormat)
		}
		if len(f) > 1 && string(f[1]) == "kB" {
			n *= 1024
		}
		*dst = n
	}
	if !haveT || !haveA {
		return 0, 0, fmt.Errorf("/proc/meminfo: no MemTotal or MemAvailable: %w", errFormat)
	}
	return total, available, nil
}

// ParseDiskstats sums the bytes read and written by the devices named in
// whole (see Disks: whole physical disks, so that a partition, a
// device-mapper volume or an md array does not count its disk's I/O twice).
// Sectors in /proc/diskstats are always 512 bytes.
func ParseDiskstats(b []byte, whole map[string]bool) (read, written uint64, err error) {
	for line := range lines(b) {
		f := bytes.Fields(line)
		if len(f) < 10 {
			if len(f) == 0 {
				continue
			}
			return 0, 0, fmt.Errorf("/proc/diskstats: line of %d fields: %w", len(f), errFormat)
		}
		if !whole[string(f[2])] {
			continue
		}
		r, err1 := strconv.ParseUint(string(f[5]), 10, 64)
		w, err2 := strconv.ParseUint(string(f[9]), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("/proc/diskstats %s: sectors: %w", f[2], errFormat)
		}
		read += r * 512
		written += w * 512
	}
	return read, written, nil
}

// HostInterface says whether a host interface's traffic counts as the
// node's: all but loopback and the virtual interfaces that only repeat
// traffic another interface already counted (veth pairs and the bridges
// of other container runtimes, ifb mirrors of traffic shaping). moat's own
// containers add no interface to the host: each has a network namespace
// of its own with only a loopback. Pure.
func HostInterface(name string) bool {
	if name == "lo" {
		return false
	}
	for _, p := range []string{"veth", "ifb", "docker", "br-", "virbr", "cni", "flannel", "cali"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// ParseNetDev sums received and sent bytes over the interfaces of a
// /proc/net/dev for which count says yes.
func ParseNetDev(b []byte, count func(name string) bool) (rx, tx uint64, err error) {
	n := 0
	for line := range lines(b) {
		n++
		if n <= 2 { // two header lines
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, fmt.Errorf("/proc/net/dev line %d: no colon: %w", n, errFormat)
		}
		name = bytes.TrimSpace(name)
		if !count(string(name)) {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 9 {
			return 0, 0, fmt.Errorf("/proc/net/dev %s: %d fields: %w", name, len(f), errFormat)
		}
		r, err1 := strconv.ParseUint(string(f[0]), 10, 64)
		t, err2 := strconv.ParseUint(string(f[8]), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("/proc/net/dev %s: bytes: %w", name, errFormat)
		}
		rx += r
		tx += t
	}
	if n < 2 {
		return 0, 0, fmt.Errorf("/proc/net/dev: no header: %w", errFormat)
	}
	return rx, tx, nil
}

// ParseKeyed reads the value of key from "key value" lines (cgroup
// cpu.stat, memory.stat, memory.events, memory.oom_control).
func ParseKeyed(b []byte, key string) (uint64, error) {
	for line := range lines(b) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", key, v, errFormat)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no %s: %w", key, errFormat)
}

// unlimited is where a v1 memory limit counts as none: the kernel reports
// no limit as PAGE_COUNTER_MAX pages (9223372036854771712 on 4 KiB pages).
const unlimited = 1 << 62

// ParseValue reads a cgroup file of one number. "max" (v2's no limit) and
// v1's huge no-limit value read as 0, none.
func ParseValue(b []byte) (uint64, error) {
	s := bytes.TrimSpace(b)
	if string(s) == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup value %.40q: %w", s, errFormat)
	}
	if n >= unlimited {
		return 0, nil
	}
	return n, nil
}

// lines iterates over b's lines without copying.
func lines(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			line, rest, _ := bytes.Cut(b, []byte("\n"))
			b = rest
			if !yield(line) {
				return
			}
		}
	}
}
