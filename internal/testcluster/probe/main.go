// Command probe runs inside test containers and reports, from the inside,
// what the container can do: its identity, capabilities, seccomp mode,
// network interfaces, filesystem and cgroup limits. Its other modes serve
// HTTP, exit with a code, ignore SIGTERM, or print lines, for the
// lifecycle tests. It must stay a static binary with no dependencies.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	mode := "report"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch mode {
	case "report":
		json.NewEncoder(os.Stdout).Encode(report())
	case "serve":
		serve(arg)
	case "say":
		// What an app may print: the dashboard's tests make it hostile.
		fmt.Println(arg)
		serve(":8080")
	case "exit":
		code, _ := strconv.Atoi(arg)
		fmt.Println("exiting with", code)
		os.Exit(code)
	case "sleep":
		fmt.Println("sleeping")
		forever()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		forever()
	case "tick":
		tick(arg)
	case "spam":
		n, _ := strconv.Atoi(arg)
		for i := range n {
			fmt.Printf("line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "done on stderr")
		forever()
	case "snoop":
		snoop()
	case "sink":
		sink(arg)
	case "burn": // keeps a core busy, for CPU figures; "burn N" allocates and touches N MiB first
		mib, _ := strconv.Atoi(arg)
		keep := make([]byte, mib<<20)
		for i := range keep {
			keep[i] = 1
		}
		fmt.Println("burning")
		for x := uint64(1); ; x = x*6364136223846793005 + uint64(len(keep)) {
			_ = x
		}
	case "leak": // serves, and after the duration given allocates until the kernel kills it
		d, err := time.ParseDuration(arg)
		if err != nil {
			d = time.Second
		}
		go serve(":8080")
		time.Sleep(d)
		fmt.Println("leaking")
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "oom":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func serve(addr string) {
	if addr == "" {
		addr = ":8080"
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "probe %s\n", host)
	})
	// /fetch?addr=HOST:PORT&path=/P makes a request from inside the
	// container and answers what came back: links are tested from where
	// an app uses them, not from the test's side of the namespace.
	http.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + r.URL.Query().Get("addr") + r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, "fetch: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("X-Probe", host) // who fetched
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	// /burn?ms=N uses N ms of CPU (the thread's own time, so a busy
	// machine does not make it use less) before it answers: load whose
	// CPU follows the requests, for the app autoscaler's tests.
	http.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		burnCPU(time.Duration(min(max(ms, 0), 10_000)) * time.Millisecond)
		fmt.Fprintf(w, "probe %s burned %dms\n", host, ms)
	})
	// /stream answers a line ("HOST N") every 100 ms until the client
	// goes: a long response, like an event stream, for tests of what
	// happens to one under way.
	http.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		f, _ := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "%s %d\n", host, i); err != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	// As a real server does: without a handler, SIGTERM to pid 1 is
	// ignored and every stop would wait out its grace period.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		fmt.Println("terminated")
		os.Exit(0)
	}()
	// A reload signal (a secret replaced in place) is reported, not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			fmt.Println("got SIGHUP")
		}
	}()
	fmt.Println("serving on", addr)
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// burnCPU spins until the calling thread has used d of CPU.
func burnCPU(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rusageThread = 1 // RUSAGE_THREAD
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(rusageThread, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, stop := used(), time.Now().Add(10*d) // without rusage, by the clock
	for x := uint64(1); used()-start < d && time.Now().Before(stop); x = x*6364136223846793005 + 1 {
		for range 10_000 {
			x = x*6364136223846793005 + 1
		}
	}
}

// sink accepts connections, reads each to its end and answers with the
// number of bytes it read: the far end of tunnel throughput tests.
func sink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("sinking on", addr)
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer conn.Close()
			n, _ := io.Copy(io.Discard, conn)
			fmt.Fprintf(conn, "ok %d\n", n)
		}()
	}
}

// tick prints a numbered line every interval, forever.
func tick(interval string) {
	d, err := time.ParseDuration(interval)
	if err != nil {
		d = 50 * time.Millisecond
	}
	for i := 0; ; i++ {
		fmt.Printf("tick %d\n", i)
		time.Sleep(d)
	}
}

// snoop watches for processes other than itself in its pid namespace and
// reports whether it can reach their root directory and executable: a
// debug tool run from the node must not be reachable.
func snoop() {
	fmt.Println("snooping")
	seen := map[string]bool{} // pid and command line: a process is checked again after each exec
	for {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == 1 || pid == os.Getpid() {
				continue
			}
			raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			cmd := strings.ReplaceAll(string(raw), "\x00", " ")
			key := e.Name() + " " + cmd
			if seen[key] {
				continue
			}
			seen[key] = true
			_, rootErr := os.ReadDir(fmt.Sprintf("/proc/%d/root/", pid))
			_, exeErr := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			fmt.Printf("snoop pid=%d cmd=%q root=%s exe=%s\n", pid, cmd, verdict(rootErr), verdict(exeErr))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func verdict(err error) string {
	if err == nil {
		return "REACHED"
	}
	return "denied"
}

type Report struct {
	UID, GID     int
	Groups       []int
	CapEff       string
	CapBnd       string
	CapAmb       string
	Seccomp      string
	NoNewPrivs   string
	Interfaces   []string // name:flags
	RootWritable bool
	RootWriteErr string // why not: read-only file system, or permission denied
	TmpWritable  bool
	TmpIsTmpfs   bool
	Pids         []int // every pid this process can see
	Hostname     string
	MemoryLimit  string
	PidsLimit    string
	CPUQuota     string
	KcoreBytes   int
	ProcSysWrite string
	NoFile       string
	Env          []string
	Cwd          string
}

func report() Report {
	var r Report
	r.UID, r.GID = os.Getuid(), os.Getgid()
	r.Groups, _ = os.Getgroups()
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			r.CapEff = v
		case "CapBnd":
			r.CapBnd = v
		case "CapAmb":
			r.CapAmb = v
		case "Seccomp":
			r.Seccomp = v
		case "NoNewPrivs":
			r.NoNewPrivs = v
		}
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		r.Interfaces = append(r.Interfaces, i.Name+":"+i.Flags.String())
	}
	if err := os.WriteFile("/probe-was-here", []byte("x"), 0o644); err != nil {
		r.RootWriteErr = errors.Unwrap(err).Error()
	} else {
		r.RootWritable = true
	}
	r.TmpWritable = os.WriteFile("/tmp/probe-was-here", []byte("x"), 0o644) == nil
	var st syscall.Statfs_t
	r.TmpIsTmpfs = syscall.Statfs("/tmp", &st) == nil && st.Type == 0x01021994
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			r.Pids = append(r.Pids, pid)
		}
	}
	r.Hostname, _ = os.Hostname()
	r.MemoryLimit = firstFile("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	r.PidsLimit = firstFile("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max")
	r.CPUQuota = firstFile("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
	kcore, _ := os.ReadFile("/proc/kcore")
	r.KcoreBytes = len(kcore)
	if err := os.WriteFile("/proc/sys/kernel/hostname", []byte("x"), 0); err != nil {
		r.ProcSysWrite = err.Error()
	} else {
		r.ProcSysWrite = "ok"
	}
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	r.NoFile = fmt.Sprintf("%d:%d", rl.Cur, rl.Max)
	r.Env = os.Environ()
	r.Cwd, _ = os.Getwd()
	return r
}

func firstFile(paths ...string) string {
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// forever blocks without tripping the runtime's deadlock detector, which an
// empty select would in a program with nothing else to do.
func forever() {
	for {
		time.Sleep(time.Hour)
	}
}
