package node

import (
	"net/netip"
	"sync"
)

// bodyBudget bounds the memory held by request bodies being read and
// handled at once. The QUIC and TCP connection caps bound connections and
// streams, but each stream of each connection may carry a 4 MiB batch,
// read whole before its signatures can be checked: 512 connections x 32
// streams x 4 MiB would be 64 GiB. Bytes are taken as they are read, per
// remote address and in total, and given back when the handler ends; a
// request that would pass either bound is answered 503 (the sender's
// outbox retries with backoff). Loopback is exempt from the per-address
// bound, as from the connection caps: a local swarm's nodes all share it.
type bodyBudget struct {
	mu      sync.Mutex
	total   int64
	byAddr  map[string]int64
	max     int64
	perAddr int64
}

const (
	defaultBodyBudget  = 64 << 20
	defaultBodyPerAddr = 16 << 20
)

func newBodyBudget(max, perAddr int64) *bodyBudget {
	return &bodyBudget{byAddr: map[string]int64{}, max: max, perAddr: perAddr}
}

// take reserves n more bytes for addr; false when a bound would be passed.
func (b *bodyBudget) take(addr string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total+n > b.max {
		return false
	}
	if !isLoopback(addr) && b.byAddr[addr]+n > b.perAddr {
		return false
	}
	b.total += n
	b.byAddr[addr] += n
	return true
}

// give returns n bytes of addr's.
func (b *bodyBudget) give(addr string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total -= n
	if b.byAddr[addr] -= n; b.byAddr[addr] <= 0 {
		delete(b.byAddr, addr) // the map holds only addresses reading now
	}
}

// held reports the bytes reserved in total (tests).
func (b *bodyBudget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func isLoopback(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.IsLoopback()
}
