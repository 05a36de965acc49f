package inventory

import (
	"errors"
	"sync"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

func TestStore(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.List(); err != nil || len(nodes) != 0 {
		t.Fatalf("empty inventory: %v %v", nodes, err)
	}
	// Concurrent enrolments do not lose each other's writes.
	var wg sync.WaitGroup
	for _, name := range []string{"c", "a", "b", "d", "e"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(Node{Name: name, Addr: name + ":22"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	nodes, _ := s.List()
	if len(nodes) != 5 || nodes[0].Name != "a" || nodes[4].Name != "e" {
		t.Fatalf("after 5 puts: %+v", nodes)
	}
	if err := s.Put(Node{Name: "a", Addr: "new:22"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Get("a"); n.Addr != "new:22" {
		t.Errorf("put replaces: got %+v", n)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("get a deleted node: %v", err)
	}
	k1, err := s.MasterKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := s.MasterKey()
	if string(k1.PublicKey().Marshal()) != string(k2.PublicKey().Marshal()) {
		t.Error("the master key changed between loads")
	}
}
