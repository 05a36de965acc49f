package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// applyConfigFile sets, from a file of "name=value" lines ('#' comments),
// every flag not given on the command line: defaults, then the file, then
// flags. A missing file is fine; an unknown name is an error.
func applyConfigFile(flags *pflag.FlagSet, path string) error {
	return readConfigFile(flags, path, false)
}

// applyConfigFileTolerant is applyConfigFile for commands that read only
// some of the node's settings (the gate): other names are skipped.
func applyConfigFileTolerant(flags *pflag.FlagSet, path string) error {
	return readConfigFile(flags, path, true)
}

func readConfigFile(flags *pflag.FlagSet, path string, tolerant bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		flag := flags.Lookup(name)
		if ok && (flag == nil || name == "config") && (tolerant || nodeOnlySettings[name]) {
			continue
		}
		if !ok || flag == nil || name == "config" {
			return fmt.Errorf("%s:%d: %q is not a setting (want flag=value, e.g. root=/var/lib/moat)", path, line, text)
		}
		if flag.Changed {
			continue
		}
		if err := flag.Value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, line, name, err)
		}
	}
	return sc.Err()
}

// nodeOnlySettings are settings of the node file that the daemon does not
// use itself (the gate reads them).
var nodeOnlySettings = map[string]bool{"max-upload": true}
