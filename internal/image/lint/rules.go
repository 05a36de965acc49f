package lint

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"sync"
)

// rule recognises one category of tool by the basename of a file.
type rule struct {
	category Category
	names    []string       // matched exactly, or with a version or triple
	re       *regexp.Regexp // built from names by compileRules if nil
}

// rules is the classification table, tried in order; the first match wins.
// To recognise a new tool, add its name to a rule's names (which also match
// with version suffixes and target triples), or add a rule with a
// hand-written regexp anchored with ^ and $.
//
// Decisions worth knowing:
//   - busybox and toybox are shells: each carries a shell applet, reachable
//     by running it as "busybox sh". pwsh (PowerShell) is a shell too.
//   - cargo, rustup, bundle and npx are package managers, like pip, npm and gem:
//     they fetch code from a registry. rustc is the compiler.
//   - The assembler (as) and linkers (ld, ld.bfd, ld.gold, ld.lld, lld) are
//     compilers: with them an attacker can build new executables. So are the
//     gcc wrappers (gcc-ar, gcc-nm, gcc-ranlib) and gcc's internal programs
//     (cc1, cc1plus, collect2): they ship only with a compiler. The dynamic
//     loader (ld-linux-x86-64.so.2, ld-musl-*.so.1) is not a linker and is
//     not matched. cpp, ar and make cannot produce executables alone and are
//     not matched; gofmt is a formatter, not a compiler, and Go's internal
//     tools (compile, link, asm) have names too generic to match safely.
//   - awk and its implementations are interpreters; sed is not.
//   - java, dotnet, node and friends are interpreters even though some
//     applications need them: a minimal image holds a static binary.
//   - Network tools are tools that move data (curl, wget, nc, rsync, ...),
//     not lookup tools such as dig or ping. sftp, scp and the openssh servers
//     are remote access; ssh-keygen and the other ssh helpers are not matched.
//
// rules are compiled on first use: the moat binary also runs as the
// per-container shim, whose memory should not pay for the lint tables.
var rules = sync.OnceValue(func() []rule { return compileRules(ruleTable) })

var ruleTable = []rule{
	{category: Shell, names: []string{
		"sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "pdksh",
		"oksh", "lksh", "csh", "tcsh", "fish", "yash", "pwsh", "busybox",
		"toybox",
	}},
	{category: PackageManager, names: []string{
		"apt", "apt-get", "aptitude", "dpkg", "rpm", "yum", "dnf", "microdnf",
		"tdnf", "zypper", "apk", "pacman", "opkg", "xbps-install", "nix",
		"nix-env", "pip", "pipx", "easy_install", "conda", "mamba",
		"micromamba", "uv", "npm", "npx", "yarn", "yarnpkg", "pnpm", "pnpx",
		"corepack", "gem", "bundle", "bundler", "composer", "cargo", "rustup",
		"cpan", "cpanm",
	}},
	{category: Compiler, names: []string{
		"cc", "c++", "c89", "c99", "gcc", "g++", "gccgo", "gcc-ar", "gcc-nm",
		"gcc-ranlib", "cc1", "cc1plus", "collect2", "clang", "clang++", "tcc",
		"go", "rustc", "javac", "kotlinc", "zig", "gfortran", "as", "nasm",
		"yasm", "ld", "ld.bfd", "ld.gold", "ld.lld", "lld", "ld64.lld",
	}},
	{category: Interpreter, names: []string{
		"python", "pypy", "perl", "ruby", "node", "nodejs", "deno", "bun",
		"php", "php-cgi", "php-fpm", "lua", "luajit", "tclsh", "wish",
		"expect", "java", "jshell", "jrunscript", "jjs", "dotnet", "awk",
		"gawk", "mawk", "nawk",
	}},
	{category: RemoteAccess, names: []string{
		"ssh", "sshd", "scp", "sftp", "sftp-server", "dropbear",
		"dropbearmulti", "dbclient", "telnet", "telnetd", "in.telnetd", "rsh",
		"rshd", "in.rshd", "rlogin", "rlogind", "in.rlogind", "mosh-server",
		"mosh-client",
	}},
	{category: Debugger, names: []string{
		"gdb", "gdbserver", "gdb-multiarch", "strace", "ltrace", "lldb",
		"lldb-server", "perf", "valgrind", "bpftrace", "stap",
	}},
	{category: NetworkTool, names: []string{
		"curl", "wget", "wget2", "nc", "ncat", "netcat", "nc.openbsd",
		"nc.traditional", "socat", "nmap", "tcpdump", "tshark", "ftp", "tftp",
		"lftp", "rsync", "aria2c",
	}},
}

// Parts of the pattern words builds. A version suffix is digits separated by
// dots, optionally after "-" or "_": python3.11, perl5.36.0, gcc-12, perf_6.1.
// A target triple prefixes cross toolchains (x86_64-linux-gnu-gcc-12) and
// suffixes some interpreters (perl5.36-x86_64-linux-gnu).
const (
	versionPattern = `(?:[-_]?[0-9]+(?:\.[0-9]+)*)?`
	triplePattern  = `[a-z0-9_]+(?:-[a-z0-9_]+)?-linux-[a-z0-9_]+`
)

// compileRules builds the regexp of every rule that lists names.
func compileRules(rs []rule) []rule {
	for i := range rs {
		if rs[i].re == nil {
			rs[i].re = words(rs[i].names...)
		}
	}
	return rs
}

// words returns a regexp matching any of names exactly, each optionally with
// a version suffix and a target triple before or after it.
func words(names ...string) *regexp.Regexp {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return regexp.MustCompile(`^(?:` + triplePattern + `-)?(?:` +
		strings.Join(quoted, "|") + `)` + versionPattern +
		`(?:-` + triplePattern + `)?$`)
}

// Classify says whether one file in the image is a finding. Pure, no I/O.
// mode is the tar header's mode as fs.FileMode (regular, symlink, dir...).
//
// Only regular files with an execute bit and symlinks are considered;
// symlinks are judged by their own name, not their target's. The finding's
// path is p made absolute and clean.
func Classify(p string, mode fs.FileMode) (Finding, bool) {
	executable := mode.IsRegular() && mode.Perm()&0o111 != 0
	if !executable && mode.Type() != fs.ModeSymlink {
		return Finding{}, false
	}
	p = path.Clean("/" + p)
	base := path.Base(p)
	for _, r := range rules() {
		if r.re.MatchString(base) {
			return Finding{Path: p, Category: r.category, Name: base}, true
		}
	}
	return Finding{}, false
}
