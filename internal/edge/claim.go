package edge

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Claims: with several edges behind one name, the first handshakes may
// reach two edges at once, and each would order the name's certificate
// (twice the CA's rate limits, two certificates). So before autocert may
// order one, an edge whose cache has none claims the order: a sealed
// entry HOST+moat-order naming this cache, carried like a challenge
// (waited for). The master, which carries one edge at a time, keeps the
// first fresh claim of a name and answers a later one from another edge
// by installing the first in its edge (InstallClaim) before acknowledging
// it. An edge that then reads another's claim waits for the certificate
// to arrive instead of ordering. The master could withhold the answer,
// as it can withhold any entry: the edge then orders after ClaimWait.

// ClaimWait bounds how long an edge waits for the certificate of a name
// another edge claimed; then it orders one itself.
const ClaimWait = 90 * time.Second

// claimFresh: a claim older than this (its order failed, its edge died)
// no longer holds others back.
const claimFresh = 2 * time.Minute

// ClaimSuffix marks a claim's entry name.
const ClaimSuffix = "+moat-order"

type claim struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

func (c *Cache) wakeArrived() {
	c.mu.Lock()
	close(c.arrived)
	c.arrived = make(chan struct{})
	c.mu.Unlock()
}

// hostLock is the lock of host's claims on this edge.
func (c *Cache) hostLock(host string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.claiming[host]
	if m == nil {
		m = &sync.Mutex{}
		c.claiming[host] = m
	}
	return m
}

func (c *Cache) has(name string) bool {
	_, err := os.Stat(c.path(name))
	return err == nil
}

// readClaim opens the claim on host, if there is one.
func (c *Cache) readClaim(ctx context.Context, host string) (claim, bool) {
	data, err := c.Get(ctx, host+ClaimSuffix)
	if err != nil {
		return claim{}, false
	}
	var cl claim
	if json.Unmarshal(data, &cl) != nil {
		return claim{}, false
	}
	return cl, true
}

// BeforeOrder is called before autocert is asked for host's certificate
// (not for challenges: a validation must never wait for an order). If
// the cache has none and another edge holds a fresh claim, or wins the
// claim this edge makes, it waits (up to ClaimWait or ctx) for that
// edge's certificate to arrive. An edge whose cache nobody carries
// returns at once.
func (c *Cache) BeforeOrder(ctx context.Context, host string) {
	if c.out == nil || c.has(host) || !c.out.carried() {
		return
	}
	mu := c.hostLock(host)
	mu.Lock()
	defer mu.Unlock()
	if c.has(host) {
		return
	}
	if cl, ok := c.readClaim(ctx, host); ok && time.Since(cl.At) < claimFresh {
		if cl.By != c.id {
			c.await(ctx, host, cl.By)
		}
		return // ours: autocert is ordering it, or has
	}
	data, _ := json.Marshal(claim{By: c.id, At: time.Now()})
	name := host + ClaimSuffix
	hash := NameHash(name)
	sealed, err := c.seal(cacheVersion, hash, data)
	if err == nil {
		err = writeFileAtomic(c.hashPath(hash), sealed)
	}
	if err != nil {
		c.log.Warn("claim to order", "host", host, "err", err)
		return
	}
	c.out.put(ctx, OutboxEntry{Hash: hash, Data: sealed, Claim: true})
	if cl, ok := c.readClaim(ctx, host); ok && cl.By != c.id {
		c.await(ctx, host, cl.By)
	}
}

// await waits for host's certificate, ordered by edge by.
func (c *Cache) await(ctx context.Context, host, by string) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, ClaimWait)
	defer cancel()
	for {
		c.mu.Lock()
		arrived := c.arrived
		c.mu.Unlock()
		if c.has(host) {
			c.log.Info("certificate ordered by another edge arrived", "host", host, "waited", time.Since(t0).Round(time.Millisecond))
			return
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			c.log.Warn("another edge claimed the order but its certificate did not arrive: ordering here", "host", host, "edge", by, "waited", time.Since(t0).Round(time.Millisecond))
			return
		}
	}
}
