package wake

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Job is one wake: the events it handles, grouped by swarm and thread.
type Job struct {
	ID      string
	Group   string
	Trigger string // the rule that fired first
	Events  []Event
	Resume  string // session to continue, if configured and known
}

// Result is what a run reports.
type Result struct {
	SessionID string
	Exit      int
	CostUSD   float64
	Text      string // the session's final result, clipped
	Err       string
	Denied    []string // tools the session asked for and was refused
	TimedOut  bool
}

// Record is one line of wake history.
type Record struct {
	ID         string   `json:"id"`
	Started    string   `json:"started"`
	Group      string   `json:"group"`
	Trigger    string   `json:"trigger"`
	Messages   []string `json:"messages,omitempty"`
	Status     string   `json:"status"` // ok, failed, timeout, skipped
	SessionID  string   `json:"session_id,omitempty"`
	Exit       int      `json:"exit"`
	DurationMs int64    `json:"duration_ms"`
	CostUSD    float64  `json:"cost_usd,omitempty"`
	Result     string   `json:"result,omitempty"`
	Error      string   `json:"error,omitempty"`
	Denied     []string `json:"denied,omitempty"` // tools asked for and refused
}

// Runner runs a job to its end (the real one starts claude -p).
type Runner interface {
	Run(ctx context.Context, j Job, timeout time.Duration) Result
}

// Book keeps history and the session to resume per group (the node's
// store). Records of a day also give the budget spent after a restart.
type Book interface {
	Add(Record) error
	Since(t time.Time) ([]Record, error)
	Session(group string) string
	SetSession(group, id string) error
}

// Engine coalesces matching events into wakes under the limits.
type Engine struct {
	self string
	run  Runner
	book Book
	log  zerolog.Logger
	now  func() time.Time

	mu       sync.Mutex
	cfg      Config
	set      Settings
	pending  map[string][]Event // group -> events waiting
	first    map[string]time.Time
	trigger  map[string]string
	running  map[string]bool
	lastWake map[string]time.Time
	kick     chan struct{}
	wg       sync.WaitGroup
}

// New makes an engine; Start runs it.
func New(self string, cfg Config, run Runner, book Book, log zerolog.Logger, now func() time.Time) (*Engine, error) {
	set, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Engine{self: self, cfg: cfg, set: set, run: run, book: book, log: log, now: now,
		pending: map[string][]Event{}, first: map[string]time.Time{}, trigger: map[string]string{},
		running: map[string]bool{}, lastWake: map[string]time.Time{}, kick: make(chan struct{}, 1)}, nil
}

// Enabled says whether wakes are on: callers skip building events when
// not (the receive path calls Offer for every message).
func (e *Engine) Enabled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Enabled && len(e.cfg.Rules) > 0
}

// SetConfig replaces the rules and limits; pending events stay.
func (e *Engine) SetConfig(cfg Config) error {
	set, err := cfg.Check()
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.cfg, e.set = cfg, set
	e.mu.Unlock()
	e.poke()
	return nil
}

func group(ev Event) string {
	if ev.Thread != "" {
		return ev.Swarm + "/" + ev.Thread
	}
	return ev.Swarm
}

// Decision is what Offer (or a dry run) decided for one event.
type Decision struct {
	Wake    bool   `json:"wake"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason"`
	Group   string `json:"group,omitempty"`
	NotTill string `json:"not_before,omitempty"` // when limits hold it back
}

// Decide is the dry run: which rule fires and what would hold the wake.
func (e *Engine) Decide(ev Event) Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.decide(ev)
}

func (e *Engine) decide(ev Event) Decision {
	if !e.cfg.Enabled {
		return Decision{Reason: "wake is disabled (swarm wake enable)"}
	}
	if ev.Muted {
		return Decision{Reason: "muted: a muted swarm or agent never wakes the agent"}
	}
	i := e.cfg.Match(e.self, ev)
	if i < 0 {
		return Decision{Reason: "no rule matches"}
	}
	d := Decision{Wake: true, Rule: e.cfg.Rules[i].String(), Group: group(ev), Reason: "rule " + fmt.Sprint(i+1) + " matches"}
	now := e.now()
	if end, quiet := e.set.QuietUntil(now); quiet {
		d.Reason += "; held for quiet hours"
		d.NotTill = end.Format(time.RFC3339)
	} else if t := e.lastWake[d.Group].Add(e.set.Cooldown); now.Before(t) {
		d.Reason += "; held for the cooldown"
		d.NotTill = t.Format(time.RFC3339)
	}
	if n, cost := e.spentToday(now); n >= e.set.DailyWakes || (e.set.DailyCost > 0 && cost >= e.set.DailyCost) {
		d.Wake = false
		d.Reason += fmt.Sprintf("; but today's budget is spent (%d wakes, $%.2f)", n, cost)
	}
	return d
}

// PromptEvents is how many events a wake's prompt shows; it counts the
// rest (their messages stay in the inbox).
const PromptEvents = 50

// Offer takes an event as it arrives. A matching event joins its group's
// pending wake; nothing else is kept. Past the events the prompt shows,
// only the ID is kept (for the history line): a flood held back by quiet
// hours or the cooldown does not hold its bodies in memory.
func (e *Engine) Offer(ev Event) Decision {
	e.mu.Lock()
	d := e.decide(ev)
	if d.Wake {
		g := d.Group
		if len(e.pending[g]) == 0 {
			e.first[g] = e.now()
			e.trigger[g] = d.Rule
		}
		switch {
		case len(e.pending[g]) >= PromptEvents:
			ev = Event{Kind: ev.Kind, ID: ev.ID}
		case ev.frame != nil:
			ev.Framed, ev.frame = ev.frame(), nil
		}
		e.pending[g] = append(e.pending[g], ev)
	}
	e.mu.Unlock()
	if d.Wake {
		e.poke()
	}
	return d
}

func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run schedules wakes until ctx ends, then waits for running ones (which
// ctx's end kills).
func (e *Engine) Run(ctx context.Context) {
	defer e.wg.Wait()
	for {
		next := e.schedule(ctx)
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// schedule starts what may start now and says when to look again.
func (e *Engine) schedule(ctx context.Context) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	next := time.Hour
	later := func(t time.Time) {
		if d := t.Sub(now); d < next {
			next = max(d, 10*time.Millisecond)
		}
	}
	if end, quiet := e.set.QuietUntil(now); quiet {
		later(end)
		return next
	}
	for g, t := range e.lastWake {
		// Past its cooldown a group's last wake holds nothing back; groups
		// are named by peers' threads, so the map must not keep them all.
		if !e.running[g] && !now.Before(t.Add(e.set.Cooldown)) {
			delete(e.lastWake, g)
		}
	}
	groups := make([]string, 0, len(e.pending))
	for g := range e.pending {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return e.first[groups[i]].Before(e.first[groups[j]]) })
	for _, g := range groups {
		if e.running[g] {
			continue // its events wait for the next wake of the group
		}
		if t := e.first[g].Add(e.set.Gather); now.Before(t) {
			later(t)
			continue
		}
		if t := e.lastWake[g].Add(e.set.Cooldown); now.Before(t) {
			later(t)
			continue
		}
		if len(e.running) >= e.set.MaxConcurrent {
			break
		}
		if n, cost := e.spentToday(now); n >= e.set.DailyWakes || (e.set.DailyCost > 0 && cost >= e.set.DailyCost) {
			e.skip(g, now, fmt.Sprintf("today's budget is spent (%d wakes, $%.2f)", n, cost))
			continue
		}
		e.start(ctx, g, now)
	}
	return next
}

func (e *Engine) take(g string) Job {
	j := Job{ID: uuid.NewString(), Group: g, Trigger: e.trigger[g], Events: e.pending[g]}
	delete(e.pending, g)
	delete(e.first, g)
	delete(e.trigger, g)
	return j
}

// skip drops a group's pending wake with a history line; the messages
// stay in the inbox.
func (e *Engine) skip(g string, now time.Time, why string) {
	j := e.take(g)
	e.add(Record{ID: j.ID, Started: now.UTC().Format(time.RFC3339Nano), Group: g, Trigger: j.Trigger,
		Messages: ids(j.Events), Status: "skipped", Error: why})
}

func (e *Engine) start(ctx context.Context, g string, now time.Time) {
	j := e.take(g)
	if e.cfg.Resume {
		j.Resume = e.book.Session(g)
	}
	e.running[g] = true
	e.lastWake[g] = now
	timeout := e.set.Timeout
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		began := e.now()
		res := e.run.Run(ctx, j, timeout)
		rec := Record{ID: j.ID, Started: began.UTC().Format(time.RFC3339Nano), Group: g, Trigger: j.Trigger,
			Messages: ids(j.Events), SessionID: res.SessionID, Exit: res.Exit,
			DurationMs: e.now().Sub(began).Milliseconds(), CostUSD: res.CostUSD, Result: res.Text, Error: res.Err, Denied: res.Denied}
		switch {
		case res.TimedOut:
			rec.Status = "timeout"
		case res.Exit != 0 || res.Err != "":
			rec.Status = "failed"
		default:
			rec.Status = "ok"
		}
		e.mu.Lock()
		e.add(rec)
		if res.SessionID != "" {
			if err := e.book.SetSession(g, res.SessionID); err != nil {
				e.log.Warn().Err(err).Msg("wake: session not remembered")
			}
		}
		delete(e.running, g)
		e.lastWake[g] = e.now() // the cooldown runs from the end of a wake
		e.mu.Unlock()
		e.log.Info().Str("wake", j.ID).Str("group", g).Str("status", rec.Status).Int64("ms", rec.DurationMs).Msg("wake finished")
		e.poke()
	}()
}

func (e *Engine) add(r Record) {
	if err := e.book.Add(r); err != nil {
		e.log.Error().Err(err).Msg("wake history not recorded")
	}
}

// spentToday counts today's wakes (local day) and their cost from the
// history, so a restart does not reset the budget.
func (e *Engine) spentToday(now time.Time) (int, float64) {
	y, m, d := now.Date()
	recs, err := e.book.Since(time.Date(y, m, d, 0, 0, 0, 0, now.Location()))
	if err != nil {
		return 0, 0
	}
	n, cost := len(e.running), 0.0
	for _, r := range recs {
		if r.Status != "skipped" {
			n++
			cost += r.CostUSD
		}
	}
	return n, cost
}

func ids(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.ID != "" {
			out = append(out, ev.ID)
		}
	}
	return out
}
