package fakegithub

import "strings"

// GitHub's label names are case-insensitive: "status:ready" names the
// repository's "Status:Ready", adding it keeps the repository's spelling,
// and filters and removals match either spelling.

// CreateLabel adds a label to the repository, spelled as given (as a
// person does in the web UI). A label already there, in any case, is
// left as it is.
func (s *Server) CreateLabel(full, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoOf(full).label(name)
}

// label is the repository's spelling of name, which it gains if new.
func (r *repo) label(name string) string {
	for _, l := range r.labels {
		if strings.EqualFold(l, name) {
			return l
		}
	}
	r.labels = append(r.labels, name)
	return name
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// repoOf finds a repository by its name in any case (callers hold mu).
func (s *Server) repoOf(full string) *repo { return s.repos[strings.ToLower(full)] }
