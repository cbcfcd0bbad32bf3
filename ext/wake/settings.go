package wake

import (
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Info is the wake configuration as a user sees it.
type Info struct {
	Config
	MCPConfig string `json:"mcp_config"` // what a woken session is given
	Daemon    bool   `json:"daemon"`     // false: nothing wakes until swarm serve runs
	// ClaudePath is the claude executable a wake would run, as this
	// process finds it; ClaudeError says why none is found.
	ClaudePath  string `json:"claude_path,omitempty"`
	ClaudeError string `json:"claude_error,omitempty"`
}

// rules shows the wake configuration.
// Values set with env NAME=VALUE are not shown (wake_rules is an MCP
// tool too): the config file has them.
func (x *ext) rules() (Info, error) {
	c, err := x.config()
	if err != nil {
		return Info{}, err
	}
	if len(c.Env) > 0 {
		env := make([]string, len(c.Env))
		for i, e := range c.Env {
			if name, _, ok := strings.Cut(e, "="); ok {
				e = name + "=…"
			}
			env[i] = e
		}
		c.Env = env
	}
	w := Info{Config: c, MCPConfig: filepath.Join(x.n.Home(), mcpFile), Daemon: x.engine != nil}
	if p, err := FindClaude(c.Claude); err != nil {
		w.ClaudeError = err.Error()
	} else {
		w.ClaudePath = p
	}
	return w, nil
}

// SetArgs change wake settings; nil leaves a setting as it is.
type SetArgs struct {
	Enabled       *bool
	Claude, Dir   *string
	Model, Quiet  *string
	Cooldown      *string
	Gather        *string
	Timeout       *string
	MaxConcurrent *int
	DailyWakes    *int
	DailyCostUSD  *float64
	Resume        *bool
	AllowedTools  *[]string
	Env           *[]string
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// set changes settings, checks them, saves the config and applies it to
// the running engine. Turning wakes on, or naming another claude while
// they are on, needs a claude this process can run: a wake that can never
// start would only fail later, unseen, at the first message.
func (x *ext) set(a SetArgs) (Info, error) {
	return x.change(func(c *Config) error {
		setIf(&c.Enabled, a.Enabled)
		setIf(&c.Claude, a.Claude)
		setIf(&c.Dir, a.Dir)
		setIf(&c.Model, a.Model)
		setIf(&c.Quiet, a.Quiet)
		setIf(&c.Cooldown, a.Cooldown)
		setIf(&c.Gather, a.Gather)
		setIf(&c.Timeout, a.Timeout)
		setIf(&c.MaxConcurrent, a.MaxConcurrent)
		setIf(&c.DailyWakes, a.DailyWakes)
		setIf(&c.DailyCostUSD, a.DailyCostUSD)
		setIf(&c.Resume, a.Resume)
		setIf(&c.AllowedTools, a.AllowedTools)
		setIf(&c.Env, a.Env)
		if c.Enabled && ((a.Enabled != nil && *a.Enabled) || a.Claude != nil) {
			if _, err := FindClaude(c.Claude); err != nil {
				return node.Userf("wakes not turned on: %v", err)
			}
		}
		return nil
	})
}

// add appends a rule.
func (x *ext) add(r Rule) (Info, error) {
	if r.Sender != "" {
		// A sender is bound to the key its name (or fingerprint) names
		// now, as a mute is.
		m, err := x.n.ResolveAgent(r.Sender)
		if err != nil {
			return Info{}, err
		}
		r.Sender, r.SenderKey = m.Domain, m.Fingerprint
	}
	return x.change(func(c *Config) error { c.Rules = append(c.Rules, r); return nil })
}

// remove removes rule number i (from 1, as `swarm wake rules` shows).
func (x *ext) remove(i int) (Info, error) {
	return x.change(func(c *Config) error {
		if i < 1 || i > len(c.Rules) {
			return node.Userf("no wake rule %d: there are %d (swarm wake rules lists them)", i, len(c.Rules))
		}
		c.Rules = append(c.Rules[:i-1:i-1], c.Rules[i:]...)
		return nil
	})
}

// change applies f to a copy of the wake settings and saves it; an error
// from f or from the check leaves everything as it was.
func (x *ext) change(f func(*Config) error) (Info, error) {
	x.mu.Lock()
	c, err := x.config()
	if err == nil {
		c.Rules = slices.Clone(c.Rules)
		err = f(&c)
	}
	if err == nil {
		if _, cerr := c.Check(); cerr != nil {
			err = node.Userf("%v", cerr)
		}
	}
	if err == nil {
		err = x.n.SetExtConfig(Name, &c)
	}
	x.mu.Unlock()
	if err != nil {
		return Info{}, err
	}
	if x.engine != nil {
		if err := x.engine.SetConfig(c); err != nil {
			return Info{}, err
		}
	}
	return x.rules()
}

// history lists recent wakes, newest first.
func (x *ext) history(limit int) ([]Record, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	recs, err := book{x.n}.Since(time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, min(limit, len(recs)))
	for i := len(recs) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, recs[i])
	}
	return out, nil
}

// TestArgs describe a message (or system event) to dry-run.
type TestArgs struct {
	Swarm, From, Body, Priority, Thread, Event string
	Direct                                     bool
}

// test says whether such a message would wake the agent now, by which
// rule, and what would hold it back. Nothing runs.
func (x *ext) test(a TestArgs) (Decision, error) {
	if a.Priority != "" && !slices.Contains(wire.Priorities, a.Priority) {
		return Decision{}, node.Userf("unknown priority %q: want one of %s", a.Priority, strings.Join(wire.Priorities, ", "))
	}
	ev := Event{Kind: "message", Swarm: a.Swarm, From: a.From, Body: a.Body, Priority: a.Priority, Thread: a.Thread, Direct: a.Direct}
	if a.Event != "" {
		ev.Kind, ev.System = "system", a.Event
	}
	if s, err := x.n.ResolveSwarm(a.Swarm); err == nil {
		ev.Swarm = s.Name
		if m, err := x.n.ResolveMember(s.ID, a.From); err == nil {
			ev.Muted, ev.FromKey = x.n.IsMuted(s.ID, m.Key), m.Fingerprint
		} else {
			ev.Muted = x.n.IsMuted(s.ID, "")
		}
	}
	e := x.engine
	if e == nil {
		// No daemon: the same rules and budget, decided here.
		c, err := x.config()
		if err != nil {
			return Decision{}, err
		}
		if e, err = New(x.n.Domain(), c, nil, book{x.n}, x.n.Log(), x.n.Now); err != nil {
			return Decision{}, node.Userf("%v", err)
		}
	}
	return e.Decide(ev), nil
}
