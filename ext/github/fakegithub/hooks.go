package fakegithub

import (
	"regexp"
	"sort"
	"sync"
	"time"
)

// Hooks is a repository webhook on the fake: every new issue, comment and
// issue event (whoever made it, through the API or a helper) is delivered
// to each URL, signed, as GitHub delivers "issues" and "issue_comment"
// events. Like GitHub it also records "mentioned" and "subscribed" events
// for each @login in a new comment or issue body (the events API lists
// them; no webhook is sent for them).
type Hooks struct {
	s      *Server
	secret []byte
	stop   chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	urls      []string
	marks     map[*repo]*hookMark
	delivered int
	failed    int
}

type hookMark struct{ issues, comments, events int }

// Hooks starts delivering the activity from now on to urls, signed with
// secret. Close it when done.
func (s *Server) Hooks(secret []byte, urls ...string) *Hooks {
	h := &Hooks{s: s, secret: append([]byte(nil), secret...), urls: urls, marks: map[*repo]*hookMark{},
		stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	for _, r := range s.repos {
		h.marks[r] = &hookMark{len(r.issues), len(r.comments), len(r.events)}
	}
	s.mu.Unlock()
	go h.run()
	return h
}

// SetURLs changes where deliveries go.
func (h *Hooks) SetURLs(urls ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.urls = urls
}

// Counts reports deliveries answered 2xx and the others.
func (h *Hooks) Counts() (delivered, failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered, h.failed
}

// Close stops the deliveries.
func (h *Hooks) Close() {
	close(h.stop)
	<-h.done
}

func (h *Hooks) run() {
	defer close(h.done)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		for _, d := range h.scan() {
			h.deliver(d)
		}
	}
}

type hookDelivery struct {
	event   string
	payload map[string]any
}

// scan collects what happened since the last scan, in order.
func (h *Hooks) scan() []hookDelivery {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hookDelivery
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := s.repos[n]
		m := h.marks[r]
		if m == nil {
			m = &hookMark{}
			h.marks[r] = m
		}
		for _, i := range r.issues[m.issues:] {
			out = append(out, hookDelivery{"issues", h.issuesPayload(r, i, "opened", i.User, nil)})
			s.mentions(r, i, i.Body)
		}
		m.issues = len(r.issues)
		out = append(out, h.activity(r, m)...)
	}
	return out
}

// activity is the comments and events since m, merged by ID (they share
// the fake's ID counter, so ID order is the order they happened in).
func (h *Hooks) activity(r *repo, m *hookMark) []hookDelivery {
	s := h.s
	var out []hookDelivery
	cs, es := r.comments[m.comments:], r.events[m.events:]
	m.comments, m.events = len(r.comments), len(r.events)
	for len(cs) > 0 || len(es) > 0 {
		if len(es) == 0 || (len(cs) > 0 && cs[0].ID < es[0].ID) {
			c := cs[0]
			cs = cs[1:]
			out = append(out, hookDelivery{"issue_comment", map[string]any{"action": "created",
				"issue": s.issueJSON(r, r.issues[c.Issue-1]), "comment": s.commentJSON(r, c),
				"repository": s.repoJSON(r), "sender": userJSON(c.User)}})
			s.mentions(r, r.issues[c.Issue-1], c.Body)
			continue
		}
		e := es[0]
		es = es[1:]
		switch e.Event {
		case "labeled", "unlabeled", "assigned", "unassigned", "closed", "reopened":
			out = append(out, hookDelivery{"issues", h.issuesPayload(r, r.issues[e.Issue-1], e.Event, e.Actor, e)})
		}
	}
	return out
}

func (h *Hooks) issuesPayload(r *repo, i *Issue, action, sender string, e *Event) map[string]any {
	p := map[string]any{"action": action, "issue": h.s.issueJSON(r, i), "repository": h.s.repoJSON(r),
		"sender": userJSON(sender)}
	if e != nil && e.Label != "" {
		p["label"] = map[string]any{"name": e.Label}
	}
	if e != nil && e.Assignee != "" {
		p["assignee"] = userJSON(e.Assignee)
	}
	return p
}

var mentionRE = regexp.MustCompile(`(?:^|[^\w@])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))`)

// mentions records GitHub's "mentioned" and "subscribed" events for each
// @login in text (the actor of both is the person mentioned). Caller
// holds mu.
func (s *Server) mentions(r *repo, i *Issue, text string) {
	for _, m := range mentionRE.FindAllStringSubmatch(text, -1) {
		s.event(r, i, "mentioned", m[1], "", "")
		s.event(r, i, "subscribed", m[1], "", "")
	}
}

func (h *Hooks) deliver(d hookDelivery) {
	h.mu.Lock()
	urls := append([]string(nil), h.urls...)
	h.mu.Unlock()
	for _, u := range urls {
		resp, err := h.s.Deliver(u, h.secret, d.event, d.payload)
		ok := err == nil && resp.StatusCode/100 == 2
		if err == nil {
			resp.Body.Close()
		}
		h.mu.Lock()
		if ok {
			h.delivered++
		} else {
			h.failed++
		}
		h.mu.Unlock()
	}
}
