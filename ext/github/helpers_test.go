package github

import (
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/store"
)

const (
	testToken = "ghp_testTOKENvalue0123456789"
	testRepo  = "acme/board"
)

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func newFake(t testing.TB, opts ...fakegithub.Option) *fakegithub.Server {
	t.Helper()
	f := fakegithub.New(testToken, opts...)
	f.AddRepo(testRepo)
	t.Cleanup(f.Close)
	return f
}

func newClient(t testing.TB, f *fakegithub.Server, token string) *Client {
	t.Helper()
	c, err := NewClient(token, f.URL, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// collector is a thread-safe sink.
type collector struct {
	mu     sync.Mutex
	events []Event
	failAt int // fail the n-th call (1-based) once; 0 never
	calls  int
}

func (c *collector) sink(e Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == c.failAt {
		return errSinkDown
	}
	c.events = append(c.events, e)
	return nil
}

func (c *collector) all() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

type sinkErr string

func (e sinkErr) Error() string { return string(e) }

const errSinkDown = sinkErr("sink down")

// eventually polls cond for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
