package node

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// An outsider opens many request streams, each sending part of a large
// batch body and then stalling: the bodies held at once stay within the
// node's body budget, the streams past it are answered 503 (retry later)
// while the others wait, and every byte is given back when they end.
func TestBodyBudgetBoundsStalledBodies(t *testing.T) {
	n := scNode(t, "a.test")
	const budget = 1 << 20
	n.bodies = newBodyBudget(budget, 256<<10) // before any request reaches it

	tr := &http3.Transport{TLSClientConfig: func() *tls.Config {
		c := pinTLS(n.pin)
		c.NextProtos = []string{http3.NextProtoH3}
		return c
	}()}
	defer tr.Close()
	const streams = 8
	release := make(chan struct{})
	codes := make(chan int, streams)
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		pr, pw := io.Pipe()
		wg.Add(1)
		go func() { // the attacker's body: 300 KiB now, the rest never
			defer wg.Done()
			_, _ = pw.Write([]byte(`{"envelopes":[` + strings.Repeat(" ", 300<<10)))
			<-release
			pw.Close()
		}()
		go func() {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "https://"+n.Addr()+"/swarm/v1/messages", pr)
			req.Header.Set("Content-Type", "application/json")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// While all are stalled, those past the budget are turned away.
	busy := 0
	deadline := time.After(10 * time.Second)
	for busy < streams-budget/(300<<10) {
		select {
		case c := <-codes:
			if c != http.StatusServiceUnavailable {
				t.Fatalf("a stalled stream got %d before release; want 503 for those past the budget", c)
			}
			busy++
		case <-deadline:
			t.Fatalf("only %d of %d stalled streams were turned away (held %d bytes)", busy, streams, n.bodies.held())
		}
	}
	if h := n.bodies.held(); h > budget || h == 0 {
		t.Fatalf("held %d bytes while stalled; budget %d", h, budget)
	}
	close(release)
	wg.Wait()
	read := 0
	for i := busy; i < streams; i++ {
		switch c := <-codes; c {
		case http.StatusBadRequest: // read whole: the body ends as bad JSON
			read++
		case http.StatusServiceUnavailable:
			busy++
		default:
			t.Errorf("released stream: %d", c)
		}
	}
	if read == 0 || read > budget/(300<<10) {
		t.Errorf("%d bodies were read whole, %d turned away; a budget of %d holds 1 to %d of them", read, busy, budget, budget/(300<<10))
	}
	scWait(t, "the budget given back", func() bool { return n.bodies.held() == 0 })
}

func TestBodyBudgetPerAddress(t *testing.T) {
	b := newBodyBudget(100, 10)
	for _, c := range []struct {
		addr string
		n    int64
		ok   bool
	}{
		{"192.0.2.1", 10, true},
		{"192.0.2.1", 1, false}, // its own bound
		{"192.0.2.2", 10, true}, // another address has its own
		{"127.0.0.1", 60, true}, // loopback: only the total
		{"127.0.0.1", 30, false},
		{"::1", 20, true},
		{"198.51.100.1", 1, false}, // the total is spent
	} {
		if got := b.take(c.addr, c.n); got != c.ok {
			t.Fatalf("take(%s, %d) = %v, want %v", c.addr, c.n, got, c.ok)
		}
	}
	b.give("192.0.2.1", 10)
	if !b.take("192.0.2.1", 10) || len(b.byAddr) != 4 {
		t.Fatalf("after give: %v", b.byAddr)
	}
	for a, v := range map[string]int64{"192.0.2.1": 10, "192.0.2.2": 10, "127.0.0.1": 60, "::1": 20} {
		b.give(a, v)
	}
	if b.held() != 0 || len(b.byAddr) != 0 {
		t.Fatalf("all given back: held %d, map %v", b.held(), b.byAddr)
	}
}
