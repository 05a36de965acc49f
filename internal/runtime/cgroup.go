package runtime

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CgroupMode reports "v2" on a unified hierarchy, "v1" otherwise (legacy or
// hybrid, as on these test machines). runc handles both from the same spec;
// moat reads a few counters itself and needs to know where they are.
func CgroupMode() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	return "v1"
}

// memoryCgroupDir is the directory of cgroupsPath in the memory hierarchy.
func memoryCgroupDir(cgroupsPath string) string {
	if CgroupMode() == "v2" {
		return filepath.Join("/sys/fs/cgroup", cgroupsPath)
	}
	return filepath.Join("/sys/fs/cgroup/memory", cgroupsPath)
}

// OOMKills returns how many processes the kernel's OOM killer killed in the
// container's cgroup (memory.events on v2, memory.oom_control on v1).
func OOMKills(cgroupsPath string) int {
	dir := memoryCgroupDir(cgroupsPath)
	for _, f := range []string{"memory.events", "memory.oom_control"} {
		if n, ok := readCounter(filepath.Join(dir, f), "oom_kill"); ok {
			return n
		}
	}
	return 0
}

// readCounter reads "key value" lines and returns the value for key.
func readCounter(path, key string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// SetCPULimit writes a container's CPU limit into its cgroup: cpu.max on
// v2, cpu.cfs_quota_us on v1 (the period stays runc's). It is what `runc
// update --cpu-quota` does, without starting a process: a failover lowers
// fifty containers' limits at once. It reports false when it found no
// file to write, for the caller to ask runc.
func SetCPULimit(cgroupsPath string, milliCPU int64) (bool, error) {
	quota, period := cpuQuota(milliCPU)
	if CgroupMode() == "v2" {
		p := filepath.Join("/sys/fs/cgroup", cgroupsPath, "cpu.max")
		return writeIfExists(p, strconv.FormatInt(quota, 10)+" "+strconv.FormatUint(period, 10))
	}
	for _, h := range []string{"cpu,cpuacct", "cpu"} {
		dir := filepath.Join("/sys/fs/cgroup", h, cgroupsPath)
		if ok, err := writeIfExists(filepath.Join(dir, "cpu.cfs_period_us"), strconv.FormatUint(period, 10)); !ok || err != nil {
			continue
		}
		return writeIfExists(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10))
	}
	return false, nil
}

func writeIfExists(path, value string) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return true, err
}
