package node

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wake"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// WakeInfo is the wake configuration as a user sees it.
type WakeInfo struct {
	wake.Config
	MCPConfig string `json:"mcp_config"` // what a woken session is given
	Daemon    bool   `json:"daemon"`     // false: nothing wakes until swarm serve runs
	// ClaudePath is the claude executable a wake would run, as this
	// process finds it; ClaudeError says why none is found.
	ClaudePath  string `json:"claude_path,omitempty"`
	ClaudeError string `json:"claude_error,omitempty"`
}

// WakeRules shows the wake configuration.
// Values set with env NAME=VALUE are not shown (wake_rules is an MCP
// tool too): the config file has them.
func (n *Node) WakeRules() (WakeInfo, error) {
	c := n.wakeConfig()
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
	w := WakeInfo{Config: c, MCPConfig: filepath.Join(n.home, wakeMCPFile), Daemon: n.wake != nil}
	if p, err := wake.FindClaude(c.Claude); err != nil {
		w.ClaudeError = err.Error()
	} else {
		w.ClaudePath = p
	}
	return w, nil
}

// WakeSetArgs change wake settings; nil leaves a setting as it is.
type WakeSetArgs struct {
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

// WakeSet changes settings, checks them, saves the config and applies it
// to the running engine. Turning wakes on, or naming another claude while
// they are on, needs a claude this process can run: a wake that can never
// start would only fail later, unseen, at the first message.
func (n *Node) WakeSet(a WakeSetArgs) (WakeInfo, error) {
	return n.changeWake(func(c *wake.Config) error {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		if a.Enabled != nil {
			c.Enabled = *a.Enabled
		}
		set(&c.Claude, a.Claude)
		set(&c.Dir, a.Dir)
		set(&c.Model, a.Model)
		set(&c.Quiet, a.Quiet)
		set(&c.Cooldown, a.Cooldown)
		set(&c.Gather, a.Gather)
		set(&c.Timeout, a.Timeout)
		if a.MaxConcurrent != nil {
			c.MaxConcurrent = *a.MaxConcurrent
		}
		if a.DailyWakes != nil {
			c.DailyWakes = *a.DailyWakes
		}
		if a.DailyCostUSD != nil {
			c.DailyCostUSD = *a.DailyCostUSD
		}
		if a.Resume != nil {
			c.Resume = *a.Resume
		}
		if a.AllowedTools != nil {
			c.AllowedTools = *a.AllowedTools
		}
		if a.Env != nil {
			c.Env = *a.Env
		}
		if c.Enabled && ((a.Enabled != nil && *a.Enabled) || a.Claude != nil) {
			if _, err := wake.FindClaude(c.Claude); err != nil {
				return Userf("wakes not turned on: %v", err)
			}
		}
		return nil
	})
}

// WakeAdd appends a rule.
func (n *Node) WakeAdd(r wake.Rule) (WakeInfo, error) {
	if r.Sender != "" {
		// A sender is bound to the key its name (or fingerprint) names
		// now, as a mute is.
		m, err := n.agentAnywhere(r.Sender)
		if err != nil {
			return WakeInfo{}, err
		}
		r.Sender, r.SenderKey = m.Domain, fingerprintOf(m.Key)
	}
	return n.changeWake(func(c *wake.Config) error { c.Rules = append(c.Rules, r); return nil })
}

// WakeRemove removes rule number i (from 1, as `swarm wake rules` shows).
func (n *Node) WakeRemove(i int) (WakeInfo, error) {
	c := n.wakeConfig()
	if i < 1 || i > len(c.Rules) {
		return WakeInfo{}, Userf("no wake rule %d: there are %d (swarm wake rules lists them)", i, len(c.Rules))
	}
	return n.changeWake(func(c *wake.Config) error { c.Rules = append(c.Rules[:i-1:i-1], c.Rules[i:]...); return nil })
}

// changeWake applies f to a copy of the wake settings and saves it; an
// error from f or from the check leaves everything as it was.
func (n *Node) changeWake(f func(*wake.Config) error) (WakeInfo, error) {
	n.mu.Lock()
	c := wake.Config{}
	if n.cfg.Wake != nil {
		c = *n.cfg.Wake
		c.Rules = append([]wake.Rule(nil), c.Rules...)
	}
	if err := f(&c); err != nil {
		n.mu.Unlock()
		return WakeInfo{}, err
	}
	if _, err := c.Check(); err != nil {
		n.mu.Unlock()
		return WakeInfo{}, Userf("%v", err)
	}
	cfg := n.cfg
	cfg.Wake = &c
	if err := SaveConfig(n.home, &cfg); err != nil {
		n.mu.Unlock()
		return WakeInfo{}, err
	}
	n.cfg.Wake = &c
	n.mu.Unlock()
	if n.wake != nil {
		if err := n.wake.SetConfig(c); err != nil {
			return WakeInfo{}, err
		}
	}
	return n.WakeRules()
}

// WakeHistory lists recent wakes, newest first.
func (n *Node) WakeHistory(limit int) ([]wake.Record, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	recs, err := wakeBook{n}.Since(time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]wake.Record, 0, min(limit, len(recs)))
	for i := len(recs) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, recs[i])
	}
	return out, nil
}

// WakeTestArgs describe a message (or system event) to dry-run.
type WakeTestArgs struct {
	Swarm, From, Body, Priority, Thread, Event string
	Direct                                     bool
}

// WakeTest says whether such a message would wake the agent now, by which
// rule, and what would hold it back. Nothing runs.
func (n *Node) WakeTest(a WakeTestArgs) (wake.Decision, error) {
	if a.Priority != "" && !contains(wire.Priorities, a.Priority) {
		return wake.Decision{}, Userf("unknown priority %q: want one of %s", a.Priority, strings.Join(wire.Priorities, ", "))
	}
	ev := wake.Event{Kind: "message", Swarm: a.Swarm, From: a.From, Body: a.Body, Priority: a.Priority, Thread: a.Thread, Direct: a.Direct}
	if a.Event != "" {
		ev.Kind, ev.System = "system", a.Event
	}
	n.mu.Lock()
	s, err := n.resolve(a.Swarm)
	if err == nil {
		ev.Swarm = s.state.Settings.Name
		if m, err := n.agentIn(s, a.From); err == nil {
			ev.Muted, ev.FromKey = n.IsMuted(s.state.ID, m.Key), fingerprintOf(m.Key)
		} else {
			ev.Muted = n.IsMuted(s.state.ID, "")
		}
	}
	n.mu.Unlock()
	e := n.wake
	if e == nil {
		// No daemon: the same rules and budget, decided here.
		if e, err = wake.New(n.cfg.Domain, n.wakeConfig(), nil, wakeBook{n}, n.log, n.now); err != nil {
			return wake.Decision{}, Userf("%v", err)
		}
	}
	return e.Decide(ev), nil
}
