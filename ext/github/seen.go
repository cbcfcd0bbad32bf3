package github

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/store"
)

// Seen is the one record of what was announced, shared by the poller and
// the webhook handler of a node. Each source names an event by every key
// it can know it by (Event.keys); an event any of whose keys was announced
// is not announced again. Keys live under gh/seen/<owner>/<name>/ with the
// repository folded to lower case (GitHub's names are case-insensitive:
// a repository linked as Acme/App is acme/app in a webhook).
//
// Without a store (tests, a handler built alone) it remembers in memory,
// bounded by seenTTL and seenMemMax.
type Seen struct {
	st   *store.Store
	once sync.Mutex // check, sink, mark: one event at a time across sources
	mu   sync.Mutex // mem
	mem  map[string]time.Time
}

const seenMemMax = 65536

// NewSeen returns the record kept in st (nil: in memory).
func NewSeen(st *store.Store) *Seen { return &Seen{st: st, mem: map[string]time.Time{}} }

func seenKey(repo, id string) []byte {
	o, n, _ := strings.Cut(strings.ToLower(repo), "/")
	return store.Key("gh", "seen", o, n, id)
}

// Has reports whether any of keys was announced for repo.
func (s *Seen) Has(repo string, keys []string) (bool, error) {
	if s.st == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range keys {
			if t, ok := s.mem[string(seenKey(repo, k))]; ok && time.Since(t) < seenTTL {
				return true, nil
			}
		}
		return false, nil
	}
	var seen bool
	err := s.st.View(func(tx *store.Tx) error {
		for _, k := range keys {
			ok, err := tx.Has(seenKey(repo, k))
			if err != nil || ok {
				seen = ok
				return err
			}
		}
		return nil
	})
	return seen, err
}

// Mark records keys as announced for repo. Lazy is enough: it survives
// the process dying, and its loss on a power cut only risks a repeat.
func (s *Seen) Mark(repo string, keys []string) error {
	if s.st == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := time.Now()
		if len(s.mem)+len(keys) > seenMemMax {
			for k, t := range s.mem {
				if now.Sub(t) >= seenTTL || len(s.mem) > seenMemMax/2 {
					delete(s.mem, k)
				}
			}
		}
		for _, k := range keys {
			s.mem[string(seenKey(repo, k))] = now
		}
		return nil
	}
	return s.st.UpdateLazy(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.PutTTL(seenKey(repo, k), true, seenTTL); err != nil {
				return err
			}
		}
		return nil
	})
}

// Once hands e to sink unless one of its keys was announced, then records
// all of them. A sink error records nothing, so the event can come again.
func (s *Seen) Once(e Event, sink func(Event) error) (announced bool, err error) {
	s.once.Lock()
	defer s.once.Unlock()
	check, mark := e.keys()
	if seen, err := s.Has(e.Repo, check); err != nil || seen {
		return false, err
	}
	if err := sink(e); err != nil {
		return false, err
	}
	return true, s.Mark(e.Repo, mark)
}

// keys are the names under which the poller and a webhook can both know
// an event. Openings and comments carry GitHub's own IDs in both sources
// (issue:<n>, comment:<id>). Other issue activity (labeled, closed,
// assigned...) has an event ID only in the events API, so both sources
// also name it by what happened, to whom, by whom and when: the webhook's
// time is the issue's updated_at, the API's the event's created_at, which
// GitHub writes in the same second; the seconds either side are checked
// too (check), while only the event's own second is recorded (mark).
func (e Event) keys() (check, mark []string) {
	if e.Action == "opened" || e.Action == "commented" || e.At.IsZero() {
		return []string{e.ID}, []string{e.ID}
	}
	detail := e.Label
	if detail == "" {
		detail = e.Assignee
	}
	act := func(sec int64) string {
		return fmt.Sprintf("act:%d:%s:%s:%s:%d", e.Issue, e.Action,
			strings.ToLower(detail), strings.ToLower(e.Actor), sec)
	}
	sec := e.At.Unix()
	return []string{e.ID, act(sec), act(sec - 1), act(sec + 1)}, []string{e.ID, act(sec)}
}
