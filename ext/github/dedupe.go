package github

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/agent-swarm/agent-swarm/store"
)

// One comment per write, eventually. The queue looks for an earlier
// attempt before writing again (write.go: Settle), but an attempt can
// still land after that (GitHub applying a request very late). A write
// that posted its comment again is therefore checked later: if two
// comments carry its marker, the later ones — the writer's own copies,
// same author and same text — are deleted, so what people see converges
// to exactly one.

// prefixCheck holds the pending checks: gh/qcheck/<write id>.
const prefixCheck = "gh/qcheck/"

// checkRounds: a check looks this many times, Settle, 2×Settle and
// 4×Settle after the write finished.
const checkRounds = 3

type dupCheck struct {
	ID    string    `json:"id"` // the write's ID, hence its marker
	Repo  string    `json:"repo"`
	Issue int       `json:"issue"`
	Since time.Time `json:"since"` // the write was queued then
	Due   time.Time `json:"due"`
	Round int       `json:"round,omitempty"`
	Tries int       `json:"tries,omitempty"` // failed tries of this round
}

// nextCheck is the check due first.
func (q *Queue) nextCheck() (c dupCheck, at time.Time, ok bool, err error) {
	err = q.st.View(func(tx *store.Tx) error {
		return tx.Scan([]byte(prefixCheck), nil, func(_ []byte, decode func(any) error) (bool, error) {
			var d dupCheck
			if err := decode(&d); err != nil {
				return false, err
			}
			if dAt := q.checkDue(d); !ok || dAt.Before(at) {
				c, at, ok = d, dAt, true
			}
			return true, nil
		})
	})
	return c, at, ok, err
}

// checkDue: rate limits hold checks as they hold writes.
func (q *Queue) checkDue(c dupCheck) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return laterOf(c.Due, q.limitUntil)
}

// runCheck runs one round of a check and schedules the next, or drops it.
func (q *Queue) runCheck(ctx context.Context, c dupCheck) {
	q.mu.Lock()
	token := q.tokens[c.ID]
	q.mu.Unlock()
	log := q.log.With().Str("write", c.ID).Str("repo", c.Repo).Int("issue", c.Issue).Logger()
	deleted, err := q.c.dedupeComments(WithToken(ctx, token), c)
	if ctx.Err() != nil {
		return
	}
	var rl *RateLimited
	switch {
	case err == nil:
		if deleted > 0 {
			log.Info().Int("deleted", deleted).Msg("deleted duplicate comments of a write")
		}
		c.Round, c.Tries = c.Round+1, 0
		c.Due = q.o.Now().Add(q.o.Settle << c.Round)
	case errors.As(err, &rl):
		c.Due = q.limited(rl)
	case uncertain(err) && c.Tries < q.o.MaxAttempts:
		c.Tries++
		c.Due = q.o.Now().Add(q.backoff(c.Tries))
	default:
		log.Warn().Err(err).Msg("duplicate check given up")
		c.Round = checkRounds
	}
	err = q.st.Update(func(tx *store.Tx) error {
		if c.Round >= checkRounds {
			return tx.Delete([]byte(prefixCheck + c.ID))
		}
		return tx.Put([]byte(prefixCheck+c.ID), c)
	})
	if err != nil {
		log.Error().Err(err).Msg("save duplicate check")
	}
	if c.Round >= checkRounds {
		q.setToken(c.ID, "")
	}
}

// dedupeComments deletes the later copies of a write's comment: those
// with its marker, the same text and the same author as the first. A
// comment that only quotes the marker differs in text and is left.
func (c *Client) dedupeComments(ctx context.Context, d dupCheck) (int, error) {
	owner, name, err := ParseRepo(d.Repo)
	if err != nil {
		return 0, err
	}
	what := (&run{w: &Write{Repo: d.Repo, Issue: d.Issue}}).what()
	opt := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	if !d.Since.IsZero() {
		since := d.Since.Add(-10 * time.Minute)
		opt.Since = &since
	}
	var mine []*gh.IssueComment
	for pages := 0; pages < 10; pages++ {
		cms, resp, err := c.gh.Issues.ListComments(ctx, owner, name, d.Issue, opt)
		if err != nil {
			return 0, c.mapErr(err, what)
		}
		for _, cm := range cms {
			if strings.Contains(cm.GetBody(), Marker(d.ID)) {
				mine = append(mine, cm)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	sort.Slice(mine, func(a, b int) bool { return mine[a].GetID() < mine[b].GetID() })
	n := 0
	for _, cm := range mine[min(1, len(mine)):] {
		first := mine[0]
		if cm.GetBody() != first.GetBody() || !strings.EqualFold(cm.GetUser().GetLogin(), first.GetUser().GetLogin()) {
			continue
		}
		_, err := c.gh.Issues.DeleteComment(ctx, owner, name, cm.GetID())
		if err = c.mapErr(err, what); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
