package fakegithub

import (
	"net/http"
	"strconv"
)

// Refusals that are not rate limits and that no retry can fix: a token
// that may only read, an archived repository, a locked issue (fake.go,
// on comments), and a repository with issues disabled (410 Gone).

// ArchiveRepo makes the repository read-only: every write is a 403.
func (s *Server) ArchiveRepo(full string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoOf(full).archived = true
}

// DisableIssues turns the repository's issues off: every issue request
// answers 410 Gone.
func (s *Server) DisableIssues(full string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoOf(full).noIssues = true
}

// LockIssue locks an issue's conversation: new comments are a 403.
func (s *Server) LockIssue(full string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoOf(full).issues[number-1].Locked = true
}

// refuse answers a request GitHub would refuse for good, reporting
// whether it did (callers hold mu).
func (s *Server) refuse(r *http.Request, rp *repo) (reply, bool) {
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	switch {
	case rp.noIssues:
		return fail(http.StatusGone, "Issues are disabled for this repo"), true
	case write && s.cur != nil && s.cur.readOnly:
		return fail(http.StatusForbidden, "Resource not accessible by personal access token"), true
	case write && rp.archived:
		return fail(http.StatusForbidden, "Repository was archived so is read-only."), true
	}
	return reply{}, false
}

// deleteComment deletes a comment: its author may, others may not (the
// fake's tokens are no repository admins).
func (s *Server) deleteComment(rp *repo, id string) reply {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return notFound()
	}
	for k, c := range rp.comments {
		if c.ID != n {
			continue
		}
		if c.User != s.actor() {
			return fail(http.StatusForbidden, "Must have admin rights to Repository.")
		}
		rp.comments = append(rp.comments[:k:k], rp.comments[k+1:]...)
		rp.issues[c.Issue-1].Comments--
		return reply{status: http.StatusNoContent}
	}
	return notFound()
}
