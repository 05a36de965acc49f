package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
)

// Context is a master the operator reaches through their own ssh: a name,
// the ssh destination (USER@HOST[:PORT] or an ssh_config alias) and the
// tenant its requests act in ("" lets the master choose).
type Context struct {
	Name   string
	Dest   string
	Tenant string
}

// Access is how ssh reaches the context's master: the destination with
// its port taken off.
func (c Context) Access() (inventory.Access, error) {
	return ParseDest(c.Dest)
}

// Contexts is the contexts file: every context and the one in use.
type Contexts struct {
	Current string // "" when none is (the local socket)
	List    []Context
}

// Local is the reserved name of the master's local socket: `moat context
// use local` or MOAT_MASTER=local.
const Local = "local"

// maxFile bounds what is read of a contexts file.
const maxFile = 1 << 20

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// CheckName refuses a context name that is not a short lower-case word.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return errs.Invalid("name", "%q: want lower-case letters, digits, '.', '_' or '-' (at most 63)", name)
	}
	if name == Local {
		return errs.Invalid("name", "%q is reserved for the local socket", name)
	}
	return nil
}

// CheckTenant refuses a tenant name the Moat-Tenant header cannot carry.
func CheckTenant(t string) error {
	if !tenantRE.MatchString(t) {
		return errs.Invalid("tenant", "%q: want lower-case letters, digits, '.', '_' or '-' (at most 63)", t)
	}
	return nil
}

// ParseDest reads USER@HOST[:PORT] (or an ssh_config alias, or
// USER@[V6]:PORT) into what ssh is given, refusing anything ssh could read
// as an option.
func ParseDest(s string) (inventory.Access, error) {
	dest, port, err := inventory.SplitDest(s)
	if err != nil {
		return inventory.Access{}, errs.Invalid("master", "%v", err)
	}
	a := inventory.Access{Dest: dest, Port: port}
	if err := a.Validate(); err != nil {
		return inventory.Access{}, fmt.Errorf("%q: %w", s, err)
	}
	return a, nil
}

// Get finds a context by name.
func (cs Contexts) Get(name string) (Context, bool) {
	for _, c := range cs.List {
		if c.Name == name {
			return c, true
		}
	}
	return Context{}, false
}

// Parse reads a contexts file, strictly: blank lines and '#' comments,
//
//	context NAME USER@HOST[:PORT] [tenant=T]
//	use NAME
//
// and nothing else. An error names the line.
func Parse(b []byte) (Contexts, error) {
	var cs Contexts
	useLine := 0
	for i, text := range strings.Split(string(b), "\n") {
		line := i + 1
		f := strings.Fields(text)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var err error
		switch f[0] {
		case "context":
			err = cs.parseContext(f[1:])
		case "use":
			switch {
			case useLine != 0:
				err = fmt.Errorf("a second use (the first is on line %d)", useLine)
			case len(f) != 2:
				err = errors.New("want: use NAME")
			default:
				cs.Current, useLine = f[1], line
			}
		default:
			err = fmt.Errorf("%q: want \"context NAME USER@HOST[:PORT] [tenant=T]\" or \"use NAME\"", f[0])
		}
		if err != nil {
			return Contexts{}, lineError(line, err)
		}
	}
	if _, ok := cs.Get(cs.Current); cs.Current != "" && !ok {
		return Contexts{}, lineError(useLine, fmt.Errorf("use %q: no such context", cs.Current))
	}
	return cs, nil
}

func lineError(line int, err error) error { return &LineError{line, err} }

// LineError is a mistake on a line of the contexts file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string   { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() []error { return []error{e.Err, errs.ErrInvalid} }

func (cs *Contexts) parseContext(f []string) error {
	if len(f) < 2 || len(f) > 3 {
		return errors.New("want: context NAME USER@HOST[:PORT] [tenant=T]")
	}
	c := Context{Name: f[0], Dest: f[1]}
	if len(f) == 3 {
		t, ok := strings.CutPrefix(f[2], "tenant=")
		if !ok {
			return fmt.Errorf("%q: want tenant=T", f[2])
		}
		c.Tenant = t
	}
	if err := c.Check(); err != nil {
		return err
	}
	if _, dup := cs.Get(c.Name); dup {
		return fmt.Errorf("context %q is defined twice", c.Name)
	}
	cs.List = append(cs.List, c)
	return nil
}

// Check validates a context's name, destination and tenant.
func (c Context) Check() error {
	if err := CheckName(c.Name); err != nil {
		return err
	}
	if _, err := c.Access(); err != nil {
		return err
	}
	if c.Tenant != "" {
		return CheckTenant(c.Tenant)
	}
	return nil
}

// Format writes the file Parse reads.
func (cs Contexts) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# moat contexts: written by moat context add|use|rm\n")
	for _, c := range cs.List {
		fmt.Fprintf(&b, "context %s %s", c.Name, c.Dest)
		if c.Tenant != "" {
			fmt.Fprintf(&b, " tenant=%s", c.Tenant)
		}
		b.WriteByte('\n')
	}
	if cs.Current != "" {
		fmt.Fprintf(&b, "use %s\n", cs.Current)
	}
	return b.Bytes()
}

// DefaultPath is the contexts file in the user's configuration directory
// (~/.config/moat/contexts, or under XDG_CONFIG_HOME).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("contexts file: %w", err)
	}
	return filepath.Join(dir, "moat", "contexts"), nil
}

// Load reads the contexts file at path; a missing file has no contexts.
func Load(path string) (Contexts, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Contexts{}, nil
	}
	if err != nil {
		return Contexts{}, fmt.Errorf("contexts file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return Contexts{}, fmt.Errorf("contexts file %s: %w", path, err)
	}
	if len(b) > maxFile {
		return Contexts{}, fmt.Errorf("contexts file %s: larger than %d bytes: %w", path, maxFile, errs.ErrInvalid)
	}
	cs, err := Parse(b)
	if err != nil {
		return Contexts{}, fmt.Errorf("contexts file %s: %w", path, err)
	}
	return cs, nil
}

// Save writes the contexts file atomically (a temporary file renamed over
// it), readable by its owner only: it names the hosts one administers.
func Save(path string, cs Contexts) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("contexts file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".contexts-*")
	if err != nil {
		return fmt.Errorf("contexts file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(cs.Format()); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("contexts file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("contexts file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("contexts file: %w", err)
	}
	return nil
}
