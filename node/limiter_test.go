package node

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestLimiterMapBound: however many distinct keys arrive, the map holds
// at most its cap; limiters that are full again are swept, the least
// recently used goes when the map is full, and a key's limiter keeps its
// state while it stays.
func TestLimiterMapBound(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name    string
		max     int
		keys    int           // distinct keys, one new key per step
		step    time.Duration // clock advance per new key
		drain   bool          // empty each new limiter's bucket
		wantLen int           // Len at the end
	}{
		{"fewer keys than the cap", 8, 5, 0, true, 5},
		{"many keys, no time passes: LRU holds the cap", 8, 1000, 0, true, 8},
		{"many keys, buckets full: the cap", 8, 1000, 0, false, 8},
		{"slow keys refill and are swept", 8, 100, 2 * time.Minute, true, 1},
		{"default cap", 0, 3 * maxLimiters, 0, true, maxLimiters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			m := &limiterMap{max: tc.max, now: func() time.Time { return now }}
			cap := tc.max
			if cap == 0 {
				cap = maxLimiters
			}
			for i := 0; i < tc.keys; i++ {
				now = now.Add(tc.step)
				l := m.get(fmt.Sprintf("10.0.%d.%d", i/256, i%256), rate.Limit(1), 5)
				if tc.drain {
					l.AllowN(now, 5)
				}
				if n := m.Len(); n > cap {
					t.Fatalf("after %d keys the map holds %d > cap %d", i+1, n, cap)
				}
			}
			if n := m.Len(); n != tc.wantLen {
				t.Fatalf("Len = %d, want %d", n, tc.wantLen)
			}
			if len(m.m) != m.lru.Len() {
				t.Fatalf("map %d and list %d disagree", len(m.m), m.lru.Len())
			}
		})
	}

	t.Run("a used key stays, its state kept", func(t *testing.T) {
		now := t0
		m := &limiterMap{max: 4, now: func() time.Time { return now }}
		hot := m.get("hot", rate.Limit(1), 5)
		hot.AllowN(now, 5) // empty: an attacker's bucket
		for i := 0; i < 100; i++ {
			m.get(fmt.Sprint("cold", i), rate.Limit(1), 5).AllowN(now, 5)
			if m.get("hot", rate.Limit(1), 5) != hot {
				t.Fatalf("the recently used key lost its limiter after %d others", i+1)
			}
		}
		if hot.AllowN(now, 1) {
			t.Fatal("the kept limiter was refilled")
		}
		if l, ok := m.Load("hot"); !ok || l != hot {
			t.Fatal("Load does not find the kept limiter")
		}
		if _, ok := m.Load("cold0"); ok {
			t.Fatal("the least recently used key was not evicted")
		}
	})
}
