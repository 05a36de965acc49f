package ldsotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// GreetOutput is what the program Greet builds prints when run with the
// argument "moat".
const GreetOutput = "hello, moat, from libgreet"

// Greet compiles, in a temporary directory, a shared library
// lib/libgreet.so and a program bin/greet linked against it with the
// DT_RUNPATH $ORIGIN/../lib, as a project's own build would lay them out,
// and returns the program's path. It skips the test when gcc is missing;
// CI installs it.
func Greet(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build a dynamically linked program: apt-get install gcc (CI installs it)")
	}
	dir := t.TempDir()
	files := map[string]string{
		"greet.c": `#include <stdio.h>
void greet(const char *who) { printf("hello, %s, from libgreet\n", who); }
`,
		"main.c": `void greet(const char *who);
int main(int argc, char **argv) { greet(argc > 1 ? argv[1] : "world"); return 0; }
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"lib", "bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"-shared", "-fPIC", "-o", "lib/libgreet.so", "greet.c"},
		{"-o", "bin/greet", "main.c", "-Llib", "-lgreet", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"},
	} {
		cmd := exec.Command("gcc", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	return filepath.Join(dir, "bin", "greet")
}
