package archive

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the child of TestKilledKeepsSamples when asked: it
// ingests and then waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ARCHIVE_KILL_CHILD"); dir != "" {
		os.Exit(killChild(dir))
	}
	os.Exit(m.Run())
}

const killSamples = 500

func killChild(dir string) int {
	now := t0.Add(time.Hour * 2)
	s, err := Open(dir, Options{Now: func() time.Time { return now }, GCInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range killSamples {
		if err := s.Ingest("n1", rec(t0.Add(time.Duration(i)*10*time.Second), nodeGroup("n1", float64(i)))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ingested")
	select {} // killed here, without Close: nothing synced by us
}

// TestKilledKeepsSamples: a master killed with SIGKILL after ingesting,
// without closing the store, loses no sample: the mapping is the page
// cache, which the kernel writes back.
func TestKilledKeepsSamples(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ARCHIVE_KILL_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ingested\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	s, _ := open(t, dir, nil)
	m := history(t, s, "node", "n1", t0, t0.Add((killSamples-1)*10*time.Second))
	if len(m.Times) != killSamples {
		t.Fatalf("%d points, want %d", len(m.Times), killSamples)
	}
	for i, v := range m.Avg[0] {
		if float64(v) != float64(i) {
			t.Fatalf("step %d after the kill: %v, want %d", i, v, i)
		}
	}
	// And the re-delivery a restarted puller makes counts once.
	if err := s.Ingest("n1", rec(t0, nodeGroup("n1", 1000))); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Dropped != 1 {
		t.Fatalf("re-delivery after the kill: %+v", st)
	}
}
