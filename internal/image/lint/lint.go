// Package lint finds what makes a container image non-minimal: shells,
// package managers, compilers, interpreters, remote-access daemons and clients,
// debuggers and network tools; and what makes it broken: ELF files whose
// interpreter or shared libraries the image lacks.
//
// A minimal moat image holds a static binary and its files, or a dynamically
// linked one with exactly what its loader needs. A tool finding is something
// an attacker could use after getting in; a Fatal finding is a program that
// would fail to start with a misleading "no such file or directory". Classify
// judges a single file by its basename and mode; Layers rebuilds an image's
// final file tree from its layer tars, classifies every entry and resolves
// every ELF file's needs as ld.so would (package ldso). Blobs come to it
// already decompressed (layer.Decompress).
package lint

// Category is the kind of a finding: a kind of tool, or a kind of file the
// image lacks.
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

	// The image lacks the ELF interpreter (PT_INTERP) of the file at Path,
	// which Name gives; the kernel would refuse to start it.
	MissingInterpreter Category = "missing-interpreter"
	// The image lacks a shared library (DT_NEEDED) of the file at Path,
	// which Name gives; the loader would refuse to start what loads it.
	MissingLibrary Category = "missing-library"
)

// Finding is one file in an image that makes it non-minimal, or that could
// not run (see Fatal).
type Finding struct {
	Path     string   `json:"path"` // absolute path in the image, e.g. "/bin/sh"
	Category Category `json:"category"`
	Name     string   `json:"name"` // what was recognised, e.g. "sh", "python3.11", "busybox"; or what is missing
}

// Fatal says whether the finding breaks the image rather than enlarges it:
// a program in it cannot start.
func (f Finding) Fatal() bool {
	return f.Category == MissingInterpreter || f.Category == MissingLibrary
}
