package sshx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/sshx"
	"github.com/moatcloud/moat/internal/testcluster"
)

func waitState(t *testing.T, c *sshx.Conn, want sshx.State, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		state, _, err := c.State()
		if state == want {
			return
		}
		select {
		case <-c.Changed():
		case <-deadline:
			t.Fatalf("node %s: state %s (last error %v), want %s within %s", c.Name(), state, err, want, timeout)
		}
	}
}

// upNode starts a one-node cluster and a pool holding an up connection
// to n1, closed when the test ends.
func upNode(t *testing.T) (*testcluster.Cluster, *sshx.Pool, *sshx.Conn) {
	t.Helper()
	c := testcluster.NewCluster(t, 1)
	c.Install("n1")
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	t.Cleanup(pool.Close)
	conn := pool.Add(c.Target("n1"))
	waitState(t, conn, sshx.Up, 20*time.Second)
	return c, pool, conn
}

func TestPoolRPC(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	c.Install("n1")
	c.Install("n2")
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []string{"n1", "n2"} {
		conn := pool.Add(c.Target(n))
		info, err := conn.NodeAPI().Info(ctx)
		if err != nil {
			t.Fatalf("info from %s: %v", n, err)
		}
		if info.Runc == "" || info.CPUs == 0 {
			t.Errorf("info from %s: %+v", n, info)
		}
		// Many requests reuse the same few rpc sessions.
		for range 50 {
			if err := conn.NodeAPI().Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestHostKeyChangedIsRefused(t *testing.T) {
	c := testcluster.NewCluster(t, 2)
	c.Install("n1")
	pool := sshx.NewPool(sshx.Config{Signer: c.MasterKey})
	defer pool.Close()
	target := c.Target("n1")
	target.HostKey = c.HostKey("n2") // what a reinstalled node, or a man in the middle, shows
	conn := pool.Add(target)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := conn.Client(ctx)
	if !errors.Is(err, sshkey.ErrHostKeyChanged) {
		t.Fatalf("connect with the wrong pinned key: %v, want ErrHostKeyChanged", err)
	}
}

// TestDeadNodeDetected: a cut link is noticed by keepalives, and the
// connection comes back when the link does.
func TestDeadNodeDetected(t *testing.T) {
	c, _, conn := upNode(t)
	if err := c.CutLink("n1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, conn, sshx.Down, 10*time.Second)
	if err := c.RestoreLink("n1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, conn, sshx.Up, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		t.Fatalf("ping after the link came back: %v", err)
	}
}

// TestNodeRebootReconnects: a node powered off (every process killed) is
// marked down; booted again, its daemon comes back and the held
// connection with it.
func TestNodeRebootReconnects(t *testing.T) {
	c, _, conn := upNode(t)
	if n := conn.Connects(); n != 1 {
		t.Errorf("up once: %d connects; want 1", n)
	}
	if err := c.StopNode("n1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, conn, sshx.Down, 10*time.Second)
	if err := c.StartNode("n1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, conn, sshx.Up, 30*time.Second)
	if n := conn.Connects(); n != 2 {
		t.Errorf("up again after a reboot: %d connects; want 2", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.NodeAPI().Ping(ctx); err != nil {
		t.Fatalf("ping after reboot: %v", err)
	}
}
