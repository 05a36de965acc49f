package ldso

import (
	"debug/elf"
	"strings"
)

// multiarch names the Debian multiarch directories of the machines moat
// runs on.
var multiarch = map[elf.Machine]string{
	elf.EM_X86_64:  "x86_64-linux-gnu",
	elf.EM_AARCH64: "aarch64-linux-gnu",
}

// DefaultDirs are the directories searched after the path lists and the
// cache, for objects of the given class and machine: the multiarch ones
// Debian's ld.so searches, then the lib64 ones Fedora's searches, then
// /lib and /usr/lib.
func DefaultDirs(class elf.Class, machine elf.Machine) []string {
	var dirs []string
	if triple, ok := multiarch[machine]; ok && class == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib/"+triple, "/usr/lib/"+triple)
	}
	if class == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// Expand replaces $ORIGIN and ${ORIGIN} in s, a DT_RPATH or DT_RUNPATH
// entry or a DT_NEEDED path, with origin. As in ld.so, $ORIGINAL is not
// $ORIGIN. Other tokens ($LIB, $PLATFORM) are left as they are, so a path
// holding them is searched verbatim and, in practice, not found.
func Expand(s, origin string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "{ORIGIN}"):
			b.WriteString(origin)
			s = rest[len("{ORIGIN}"):]
		case strings.HasPrefix(rest, "ORIGIN") && !isNameByte(rest, len("ORIGIN")):
			b.WriteString(origin)
			s = rest[len("ORIGIN"):]
		default:
			b.WriteByte('$')
			s = rest
		}
	}
}

// isNameByte says whether s[i] exists and can continue a token name.
func isNameByte(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
