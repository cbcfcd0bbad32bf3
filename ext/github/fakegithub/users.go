package fakegithub

import "net/http"

// Each token acts as its own user, as on GitHub: three nodes with three
// tokens are three logins, and what each writes is attributed to it.

// user is who a token acts as.
type user struct {
	login string
	// app: a GitHub App installation token. GET /user answers 403 (an
	// installation is no user); writes are by the app's bot login.
	app bool
	// readOnly: a token without write permission: every write is a 403
	// that is not a rate limit.
	readOnly bool
}

// AddToken accepts another token, acting as login.
func (s *Server) AddToken(token, login string) { s.addUser(token, &user{login: login}) }

// AddAppToken accepts a GitHub App installation token whose writes are
// by botLogin (e.g. "swarm-app[bot]"); GET /user with it is a 403.
func (s *Server) AddAppToken(token, botLogin string) {
	s.addUser(token, &user{login: botLogin, app: true})
}

// AddReadOnlyToken accepts a token of login that may read but not write
// (a fine-grained token with read access only).
func (s *Server) AddReadOnlyToken(token, login string) {
	s.addUser(token, &user{login: login, readOnly: true})
}

func (s *Server) addUser(token string, u *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[token] = u
}

// actor is the login of the request being served (callers hold mu).
func (s *Server) actor() string {
	if s.cur == nil {
		return s.login
	}
	return s.cur.login
}

// whoami answers GET /user as GitHub does: the token's user, or a 403
// for an App installation token.
func (s *Server) whoami() reply {
	if s.cur != nil && s.cur.app {
		return fail(http.StatusForbidden, "Resource not accessible by integration")
	}
	return reply{status: http.StatusOK, body: map[string]any{"login": s.actor(), "id": 1, "type": "User"}}
}
