package fakegithub

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// User is one token's user on the fake: what GitHub shows as the author
// of that token's writes.
type User struct {
	Token string
	Login string
	// App: a GitHub App installation token. GET /user answers 403 ("Resource
	// not accessible by integration"), as GitHub does; the writes are
	// still authored by Login (an App's is "name[bot]").
	App bool
}

// Front serves the fake to several token users at its own URL: each
// request is made as the user whose token it carries, so every writer is
// told apart as on GitHub (the fake alone knows one token and one user).
// Requests through a Front run one at a time.
type Front struct {
	URL string

	s     *Server
	srv   *httptest.Server
	mu    sync.Mutex
	users map[string]User
}

// Front starts a front for users. Close it when done (Server.Close does
// not).
func (s *Server) Front(users ...User) *Front {
	f := &Front{s: s, users: map[string]User{}}
	for _, u := range users {
		f.users[u.Token] = u
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	return f
}

// Close stops the front.
func (f *Front) Close() { f.srv.Close() }

func (f *Front) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[bearer(r)]
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiErr{Message: "Bad credentials", Docs: docsURL})
		return
	}
	if u.App && strings.TrimPrefix(r.URL.Path, "/api/v3") == "/user" {
		writeJSON(w, http.StatusForbidden, apiErr{Message: "Resource not accessible by integration", Docs: docsURL})
		return
	}
	s := f.s
	s.mu.Lock()
	saved := s.login
	s.login = u.Login
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.login = saved
		s.mu.Unlock()
	}()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+s.token)
	s.serve(w, r)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "token "} {
		if t, ok := strings.CutPrefix(h, p); ok {
			return t
		}
	}
	return ""
}
