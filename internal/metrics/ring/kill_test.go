package ring

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const childEnv = "MOAT_RING_KILL_CHILD"

var killOpts = Options{Slots: 64, SlotSize: 512}

// TestMain runs the child of TestSIGKILLMidAppend when the environment
// names its ring: the test binary re-executed appends until it is killed,
// so the parent's test list holds no test that only a child may run.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		killChild(path)
	}
	os.Exit(m.Run())
}

// killChild appends to the ring at path until killed, reporting progress
// on stdout.
func killChild(path string) {
	r, err := Open(path, killOpts)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for {
		seq := r.Newest() + 1
		if _, err := r.Append(t0.Add(time.Duration(seq)*10*time.Second), payload(seq)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if seq%100 == 0 {
			fmt.Println(seq)
		}
	}
}

// A node daemon killed mid-append keeps every record it finished writing,
// and the sequences it kept are contiguous.
func TestSIGKILLMidAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var reported uint64
	deadline := time.After(60 * time.Second)
	for reported < 2000 { // the ring has wrapped many times
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited after reporting %d", reported)
			}
			n, err := strconv.ParseUint(line, 10, 64)
			if err != nil {
				t.Fatalf("child: %s", line)
			}
			reported = n
		case <-deadline:
			t.Fatalf("child reported only %d appends in 60 s", reported)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	r := openT(t, path, killOpts)
	oldest, newest := r.Oldest(), r.Newest()
	if newest < reported {
		t.Fatalf("newest %d, but the child had finished %d", newest, reported)
	}
	recs, gap, err := r.ReadFrom(oldest-1, 1000)
	if err != nil || gap {
		t.Fatalf("ReadFrom: gap %v err %v", gap, err)
	}
	// A full ring keeps a ring's length, less at most the slot a torn write
	// was overwriting.
	if len(recs) < killOpts.Slots-1 || recs[len(recs)-1].Seq != newest {
		t.Fatalf("kept %d records ending at %d, want at least %d ending at %d", len(recs), recs[len(recs)-1].Seq, killOpts.Slots-1, newest)
	}
	for i, rec := range recs {
		if want := oldest + uint64(i); rec.Seq != want || string(rec.Data) != string(payload(want)) {
			t.Fatalf("record %d: seq %d (payload ok %v), want %d", i, rec.Seq, string(rec.Data) == string(payload(want)), want)
		}
	}
	if seq, err := r.Append(t0, []byte("after")); err != nil || seq != newest+1 {
		t.Fatalf("Append after reopen: seq %d err %v, want %d", seq, err, newest+1)
	}
}
