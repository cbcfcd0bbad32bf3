package node

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds a limiterMap: far more keys than a small node has
// peers (DESIGN §5), at ~200 bytes each.
const maxLimiters = 4096

// limiterSweepEvery is how often a limiterMap drops the limiters that are
// full again: those are as good as new, so forgetting them loses nothing.
const limiterSweepEvery = time.Minute

// limiterMap holds one rate limiter per key (a remote address, a
// sender's key) in bounded memory. Limiters whose bucket has refilled are
// dropped at a sweep; when the map is full the least recently used one
// goes. The zero value is ready, with room for maxLimiters.
type limiterMap struct {
	max int              // 0 means maxLimiters
	now func() time.Time // nil means time.Now (the limiters' own clock)

	mu    sync.Mutex
	m     map[string]*list.Element // of *limEntry
	lru   list.List                // front: most recently used
	swept time.Time
}

type limEntry struct {
	key string
	l   *rate.Limiter
}

// get is key's limiter, made with r and burst if key has none.
func (m *limiterMap) get(key string, r rate.Limit, burst int) *rate.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[key]; ok {
		m.lru.MoveToFront(e)
		return e.Value.(*limEntry).l
	}
	if m.m == nil {
		m.m = map[string]*list.Element{}
	}
	max := m.max
	if max <= 0 {
		max = maxLimiters
	}
	now := m.clock()
	// A full map sweeps at most once a second, so a flood of new keys
	// costs O(1) each in between.
	if since := now.Sub(m.swept); since >= limiterSweepEvery || (len(m.m) >= max && since >= time.Second) {
		m.sweep(now)
	}
	for len(m.m) >= max {
		m.remove(m.lru.Back())
	}
	l := rate.NewLimiter(r, burst)
	m.m[key] = m.lru.PushFront(&limEntry{key: key, l: l})
	return l
}

// Load is key's limiter, if it has one.
func (m *limiterMap) Load(key string) (*rate.Limiter, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[key]; ok {
		return e.Value.(*limEntry).l, true
	}
	return nil, false
}

// Len is the number of limiters held.
func (m *limiterMap) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func (m *limiterMap) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// sweep drops the limiters that are full again.
func (m *limiterMap) sweep(now time.Time) {
	m.swept = now
	for e := m.lru.Back(); e != nil; {
		prev := e.Prev()
		if l := e.Value.(*limEntry).l; l.TokensAt(now) >= float64(l.Burst()) {
			m.remove(e)
		}
		e = prev
	}
}

func (m *limiterMap) remove(e *list.Element) {
	delete(m.m, e.Value.(*limEntry).key)
	m.lru.Remove(e)
}
