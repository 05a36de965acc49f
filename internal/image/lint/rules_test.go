package lint

import (
	"io/fs"
	"path"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	const (
		exe     fs.FileMode = 0o755
		data    fs.FileMode = 0o644
		ownerX  fs.FileMode = 0o744
		symlink             = fs.ModeSymlink | 0o777
		dir                 = fs.ModeDir | 0o755
	)
	tests := []struct {
		path string
		mode fs.FileMode
		want Category // "" means no finding
	}{
		// Shells.
		{"/bin/sh", exe, Shell},
		{"/bin/bash", exe, Shell},
		{"/bin/rbash", symlink, Shell},
		{"/usr/bin/dash", exe, Shell},
		{"/bin/ash", symlink, Shell},
		{"/bin/zsh", exe, Shell},
		{"/bin/zsh-5.9", exe, Shell},
		{"/bin/ksh93", exe, Shell},
		{"/bin/mksh", exe, Shell},
		{"/bin/csh", exe, Shell},
		{"/bin/tcsh", exe, Shell},
		{"/usr/bin/fish", exe, Shell},
		{"/bin/busybox", exe, Shell},
		{"/bin/toybox", exe, Shell},
		{"/opt/microsoft/powershell/7/pwsh", exe, Shell},
		{"/bin/sh", ownerX, Shell},
		{"/bin/sh", exe | fs.ModeSetuid, Shell},
		// Package managers.
		{"/usr/bin/apt", exe, PackageManager},
		{"/usr/bin/apt-get", exe, PackageManager},
		{"/usr/bin/aptitude", exe, PackageManager},
		{"/usr/bin/dpkg", exe, PackageManager},
		{"/usr/bin/rpm", exe, PackageManager},
		{"/usr/bin/yum", symlink, PackageManager},
		{"/usr/bin/dnf", exe, PackageManager},
		{"/usr/bin/dnf5", exe, PackageManager},
		{"/usr/bin/microdnf", exe, PackageManager},
		{"/usr/bin/zypper", exe, PackageManager},
		{"/sbin/apk", exe, PackageManager},
		{"/usr/bin/pacman", exe, PackageManager},
		{"/usr/bin/pip", exe, PackageManager},
		{"/usr/bin/pip3", exe, PackageManager},
		{"/usr/local/bin/pip3.11", exe, PackageManager},
		{"/usr/bin/npm", symlink, PackageManager},
		{"/usr/bin/npx", symlink, PackageManager},
		{"/usr/bin/yarn", exe, PackageManager},
		{"/usr/bin/pnpm", exe, PackageManager},
		{"/usr/bin/gem", exe, PackageManager},
		{"/usr/bin/bundle", exe, PackageManager},
		{"/root/.cargo/bin/cargo", exe, PackageManager},
		{"/root/.cargo/bin/rustup", exe, PackageManager},
		// Compilers and the toolchain around them.
		{"/usr/bin/cc", symlink, Compiler},
		{"/usr/bin/c++", symlink, Compiler},
		{"/usr/bin/gcc", exe, Compiler},
		{"/usr/bin/gcc-12", exe, Compiler},
		{"/usr/bin/g++-12", exe, Compiler},
		{"/usr/bin/x86_64-linux-gnu-gcc-12", exe, Compiler},
		{"/usr/bin/aarch64-alpine-linux-musl-gcc", exe, Compiler},
		{"/usr/bin/arm-linux-gnueabihf-g++", exe, Compiler},
		{"/usr/bin/gcc-ar", exe, Compiler},
		{"/usr/bin/x86_64-linux-gnu-gcc-ar-12", exe, Compiler},
		{"/usr/libexec/gcc/x86_64-linux-gnu/12/cc1", exe, Compiler},
		{"/usr/libexec/gcc/x86_64-linux-gnu/12/cc1plus", exe, Compiler},
		{"/usr/bin/clang-14", exe, Compiler},
		{"/usr/bin/clang++", exe, Compiler},
		{"/usr/bin/tcc", exe, Compiler},
		{"/usr/local/go/bin/go", exe, Compiler},
		{"/usr/local/cargo/bin/rustc", exe, Compiler},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/javac", exe, Compiler},
		{"/usr/bin/as", exe, Compiler},
		{"/usr/bin/ld", symlink, Compiler},
		{"/usr/bin/ld.gold", exe, Compiler},
		{"/usr/bin/x86_64-linux-gnu-ld.bfd", exe, Compiler},
		// Interpreters.
		{"/usr/bin/python", symlink, Interpreter},
		{"/usr/bin/python3", symlink, Interpreter},
		{"/usr/bin/python3.11", exe, Interpreter},
		{"/usr/bin/pypy3", exe, Interpreter},
		{"/usr/bin/perl", exe, Interpreter},
		{"/usr/bin/perl5.36.0", exe, Interpreter},
		{"/usr/bin/perl5.36-x86_64-linux-gnu", exe, Interpreter},
		{"/usr/bin/ruby3.1", exe, Interpreter},
		{"/usr/local/bin/node", exe, Interpreter},
		{"/usr/bin/nodejs", exe, Interpreter},
		{"/usr/bin/php8.2", exe, Interpreter},
		{"/usr/sbin/php-fpm8.2", exe, Interpreter},
		{"/usr/bin/lua5.4", exe, Interpreter},
		{"/usr/bin/tclsh8.6", exe, Interpreter},
		{"/usr/bin/wish", exe, Interpreter},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", exe, Interpreter},
		{"/opt/java/openjdk/bin/jshell", exe, Interpreter},
		{"/usr/bin/awk", symlink, Interpreter},
		{"/etc/alternatives/awk", symlink, Interpreter},
		{"/usr/bin/gawk", exe, Interpreter},
		{"/usr/bin/mawk", exe, Interpreter},
		// Remote access.
		{"/usr/sbin/sshd", exe, RemoteAccess},
		{"/usr/bin/ssh", exe, RemoteAccess},
		{"/usr/bin/scp", exe, RemoteAccess},
		{"/usr/lib/openssh/sftp-server", exe, RemoteAccess},
		{"/usr/sbin/dropbear", exe, RemoteAccess},
		{"/usr/bin/telnet", exe, RemoteAccess},
		{"/usr/sbin/telnetd", exe, RemoteAccess},
		{"/usr/sbin/in.telnetd", exe, RemoteAccess},
		{"/usr/bin/rsh", exe, RemoteAccess},
		{"/usr/bin/rlogin", exe, RemoteAccess},
		// Debuggers.
		{"/usr/bin/gdb", exe, Debugger},
		{"/usr/bin/gdbserver", exe, Debugger},
		{"/usr/bin/strace", exe, Debugger},
		{"/usr/bin/ltrace", exe, Debugger},
		{"/usr/bin/lldb-14", exe, Debugger},
		{"/usr/bin/perf", exe, Debugger},
		{"/usr/bin/perf_6.1", exe, Debugger},
		{"/usr/bin/valgrind", exe, Debugger},
		{"/usr/bin/bpftrace", exe, Debugger},
		// Network tools.
		{"/usr/bin/curl", exe, NetworkTool},
		{"/usr/bin/wget", exe, NetworkTool},
		{"/bin/nc", symlink, NetworkTool},
		{"/usr/bin/ncat", exe, NetworkTool},
		{"/bin/netcat", symlink, NetworkTool},
		{"/bin/nc.openbsd", exe, NetworkTool},
		{"/bin/nc.traditional", exe, NetworkTool},
		{"/usr/bin/socat", exe, NetworkTool},
		{"/usr/bin/nmap", exe, NetworkTool},
		{"/usr/bin/tcpdump", exe, NetworkTool},
		{"/usr/bin/ftp", exe, NetworkTool},
		{"/usr/bin/tftp", exe, NetworkTool},
		{"/usr/bin/rsync", exe, NetworkTool},

		// Not executable, or not a file that runs.
		{"/usr/share/doc/python3/changelog", data, ""},
		{"/bin/sh", data, ""},
		{"/bin/sh", dir, ""},
		{"/usr/share/bash-completion", dir, ""},
		{"/usr/lib/python3.11", dir, ""},
		{"/usr/lib/python3", dir, ""},
		{"/dev/tcp", fs.ModeDevice | fs.ModeCharDevice | 0o666, ""},
		{"/bin/sh", fs.ModeNamedPipe | 0o755, ""},
		// Executable, but not a tool the rules name.
		{"/usr/bin/shellcheck", exe, ""},
		{"/usr/local/bin/node_exporter", exe, ""},
		{"/usr/local/bin/nodejs-app", exe, ""},
		{"/usr/bin/python3-config", exe, ""},
		{"/usr/bin/curl-config", exe, ""},
		{"/usr/bin/ssh-keygen", exe, ""},
		{"/usr/bin/sha256sum", exe, ""},
		{"/usr/bin/basename", exe, ""},
		{"/usr/bin/sed", exe, ""},
		{"/usr/bin/dig", exe, ""},
		{"/usr/local/go/bin/gofmt", exe, ""},
		{"/usr/bin/fish_indent", exe, ""},
		{"/usr/bin/bashbug", exe, ""},
		{"/usr/bin/ccache", exe, ""},
		{"/lib64/ld-linux-x86-64.so.2", exe, ""},
		{"/lib/x86_64-linux-gnu/ld-2.31.so", exe, ""},
		{"/lib/ld-musl-x86_64.so.1", exe, ""},
		{"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", exe, ""},
		{"/app/server", exe, ""},
		{"/", dir, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.mode.String(), func(t *testing.T) {
			got, ok := Classify(tt.path, tt.mode)
			if tt.want == "" {
				if ok {
					t.Fatalf("Classify(%q, %v) = %+v, want no finding", tt.path, tt.mode, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Classify(%q, %v) found nothing, want %s", tt.path, tt.mode, tt.want)
			}
			want := Finding{Path: tt.path, Category: tt.want, Name: path.Base(tt.path)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Classify(%q, %v) mismatch (-want +got):\n%s", tt.path, tt.mode, diff)
			}
		})
	}
}

func TestClassifyCleansPath(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"bin/sh", "/bin/sh"},
		{"./bin/sh", "/bin/sh"},
		{"/usr//bin/../bin/sh", "/usr/bin/sh"},
	}
	for _, tt := range tests {
		got, ok := Classify(tt.path, 0o755)
		if !ok || got.Path != tt.want || got.Name != "sh" {
			t.Errorf("Classify(%q) = %+v, %v; want path %q, name sh", tt.path, got, ok, tt.want)
		}
	}
}

// TestRulesDisjoint checks that no name is listed under two categories, so
// that the order of the table never decides a category by accident.
func TestRulesDisjoint(t *testing.T) {
	for i, r := range rules() {
		for _, other := range rules()[i+1:] {
			for _, name := range append(r.names, other.names...) {
				if r.re.MatchString(name) && other.re.MatchString(name) {
					t.Errorf("%q matches both %s and %s", name, r.category, other.category)
				}
			}
		}
	}
}
