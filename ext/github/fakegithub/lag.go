package fakegithub

import (
	"net/http"
	"time"
)

// GitHub is eventually consistent: a comment or issue just created may
// be missing from list reads for a few seconds, and a write may be
// applied after its client gave up (a timeout, a dropped connection, a
// node killed mid-request). These are what a "did my write land?" check
// must survive.

// SetListLag makes comments and issues created from now on appear in
// list results only lag after they were created. Reading one issue
// directly is not delayed.
func (s *Server) SetListLag(lag time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = lag
}

// LateApply holds each of the next n writes (non-GET requests) for
// after, then applies it whether or not the client is still waiting:
// with a client timeout shorter than after, the client gives up on a
// write that lands anyway.
func (s *Server) LateApply(n int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lateN, s.lateAfter = n, after
}

// applyLate waits, without holding mu, when r is a write to hold.
// Callers hold mu; it is held again on return.
func (s *Server) applyLate(r *http.Request) {
	if s.lateN <= 0 || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return
	}
	s.lateN--
	d := s.lateAfter
	s.mu.Unlock()
	time.Sleep(d) // not r.Context(): the write lands even if the client left
	s.mu.Lock()
}

// listed says whether an object listed from at is visible now.
func listed(at time.Time) bool { return !time.Now().Before(at) }
