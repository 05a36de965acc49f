// Package lint finds what makes a container image non-minimal: shells,
// package managers, compilers, interpreters, remote-access daemons and clients,
// debuggers and network tools.
//
// A minimal moat image holds a static binary and its files. Anything this
// package reports is a tool an attacker could use after getting in. Classify
// judges a single file by its basename and mode; Layers rebuilds an image's
// final file tree from its layer tars and classifies every entry; Open
// decompresses a layer blob.
package lint

// Category is the kind of tool a finding is.
type Category string

// The categories of findings.
const (
	Shell          Category = "shell"
	PackageManager Category = "package-manager"
	Compiler       Category = "compiler"
	Interpreter    Category = "interpreter"
	RemoteAccess   Category = "remote-access" // sshd, ssh, telnet, telnetd, ...
	Debugger       Category = "debugger"      // gdb, strace, ltrace, lldb, perf, ...
	NetworkTool    Category = "network-tool"  // curl, wget, nc, ncat, netcat, socat, nmap, tcpdump, ftp, ...
)

// Finding is one file in an image that makes it non-minimal.
type Finding struct {
	Path     string   `json:"path"` // absolute path in the image, e.g. "/bin/sh"
	Category Category `json:"category"`
	Name     string   `json:"name"` // what was recognised, e.g. "sh", "python3.11", "busybox"
}
