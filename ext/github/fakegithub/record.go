package fakegithub

import (
	"net/http"
	"time"
)

// Request is one authenticated request the fake received.
type Request struct {
	Method    string
	Path      string
	Login     string // the token's user
	UserAgent string
	At        time.Time
}

// Write reports whether the request changes something (GitHub's
// "mutating" requests, which it asks to space at least 1 s apart).
func (r Request) Write() bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// RequestLog returns the authenticated requests received, oldest first.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

func (s *Server) record(r *http.Request, u *user) {
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Login: u.login,
		UserAgent: r.Header.Get("User-Agent"), At: time.Now()})
}
