// Package wake decides when a message should wake an idle Claude Code
// agent and runs the headless session that handles it (DESIGN §6). It knows
// nothing of swarms or stores: the node feeds it events and keeps its
// history.
package wake

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Trigger kinds a rule can have.
var Kinds = []string{"any", "direct", "mention", "swarm", "sender", "keyword", "priority", "system"}

// System events a rule of kind "system" can name.
var SystemEvents = []string{"joined", "kicked", "master_changed", "task_assigned"}

var priorities = map[string]int{"low": 0, "normal": 1, "": 1, "high": 2, "urgent": 3}

// Rule is one trigger. On says what fires it; Swarm and Sender narrow any
// kind (and are what kinds "swarm" and "sender" match on).
type Rule struct {
	On     string `json:"on"`
	Swarm  string `json:"swarm,omitempty"`
	Sender string `json:"sender,omitempty"`
	// SenderKey is the fingerprint of the key Sender named when the rule
	// was made: an agent is its key, so another key taking the name in
	// another swarm does not match (DESIGN §2).
	SenderKey string `json:"sender_key,omitempty"`
	Keyword   string `json:"keyword,omitempty"`  // kind keyword: a word in the text, any case
	Priority  string `json:"priority,omitempty"` // kind priority: this or higher
	Event     string `json:"event,omitempty"`    // kind system: one of SystemEvents, empty for all
}

// Config is a node's wake settings (the "wake" section of config.json).
type Config struct {
	Enabled bool   `json:"enabled"`
	Rules   []Rule `json:"rules,omitempty"`
	Claude  string `json:"claude,omitempty"` // the executable; default "claude" on PATH
	Dir     string `json:"dir,omitempty"`    // working directory of the session; default the node's home
	Model   string `json:"model,omitempty"`
	// AllowedTools are allowed beyond the swarm tools. Built-in Claude
	// Code tools among them (Read, Bash(git log:*), …) are also the only
	// built-ins the session has (--tools); by default it has none.
	AllowedTools []string `json:"allowed_tools,omitempty"`
	// Env is environment a woken session gets beyond the standard list
	// (PassEnv): NAME takes the daemon's value, NAME=VALUE sets one.
	Env []string `json:"env,omitempty"`
	// Resume continues the last session of the same swarm/thread.
	Resume bool   `json:"resume,omitempty"`
	Quiet  string `json:"quiet,omitempty"` // local time span with no wakes, e.g. "22:00-07:00"
	// Cooldown between two wakes for the same swarm/thread; default 2m.
	Cooldown string `json:"cooldown,omitempty"`
	// Gather: how long after the first matching message a wake waits, so
	// a burst is handled by one session; default 1s.
	Gather        string  `json:"gather,omitempty"`
	MaxConcurrent int     `json:"max_concurrent,omitempty"` // default 1
	DailyWakes    int     `json:"daily_wakes,omitempty"`    // default 20
	DailyCostUSD  float64 `json:"daily_cost_usd,omitempty"` // 0: no cost cap
	Timeout       string  `json:"timeout,omitempty"`        // a wake is killed after this; default 10m
}

// Settings are a Config's values with defaults filled in and parsed.
type Settings struct {
	Cooldown, Gather, Timeout time.Duration
	MaxConcurrent, DailyWakes int
	DailyCost                 float64
	quietFrom, quietTo        int // minutes after midnight; equal: none
}

// Check validates the config and returns its settings.
func (c Config) Check() (Settings, error) {
	s := Settings{MaxConcurrent: c.MaxConcurrent, DailyWakes: c.DailyWakes, DailyCost: c.DailyCostUSD}
	var err error
	if s.Cooldown, err = dur("cooldown", c.Cooldown, 2*time.Minute); err != nil {
		return s, err
	}
	if s.Gather, err = dur("gather", c.Gather, time.Second); err != nil {
		return s, err
	}
	if s.Timeout, err = dur("timeout", c.Timeout, 10*time.Minute); err != nil {
		return s, err
	}
	if s.MaxConcurrent <= 0 {
		s.MaxConcurrent = 1
	}
	if s.DailyWakes <= 0 {
		s.DailyWakes = 20
	}
	if s.DailyCost < 0 {
		return s, fmt.Errorf("daily_cost_usd must not be negative")
	}
	if c.Quiet != "" {
		if s.quietFrom, s.quietTo, err = parseSpan(c.Quiet); err != nil {
			return s, err
		}
	}
	for i, r := range c.Rules {
		if err := r.Check(); err != nil {
			return s, fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	for _, t := range c.AllowedTools {
		if t == "" || strings.ContainsAny(t, ", \n") {
			return s, fmt.Errorf("allowed tool %q: one tool name per entry", t)
		}
	}
	for _, e := range c.Env {
		name, _, _ := strings.Cut(e, "=")
		if !envName.MatchString(name) {
			return s, fmt.Errorf("env %q: want NAME or NAME=VALUE, NAME of letters, digits and _", e)
		}
		if name == "SWARM_WAKE" || name == "SWARM_HOME" {
			return s, fmt.Errorf("env %s: the node sets it for every woken session", name)
		}
	}
	return s, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func dur(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration like 90s or 5m", name, v)
	}
	return d, nil
}

var spanRE = regexp.MustCompile(`^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$`)

func parseSpan(s string) (int, int, error) {
	m := spanRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("quiet %q: want HH:MM-HH:MM, e.g. 22:00-07:00", s)
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	if n[0] > 23 || n[2] > 23 || n[1] > 59 || n[3] > 59 {
		return 0, 0, fmt.Errorf("quiet %q: hours 0-23, minutes 0-59", s)
	}
	return n[0]*60 + n[1], n[2]*60 + n[3], nil
}

// QuietUntil reports whether t falls in quiet hours and, if so, when they end.
func (s Settings) QuietUntil(t time.Time) (time.Time, bool) {
	if s.quietFrom == s.quietTo {
		return time.Time{}, false
	}
	m := t.Hour()*60 + t.Minute()
	in := m >= s.quietFrom && m < s.quietTo
	if s.quietFrom > s.quietTo { // over midnight
		in = m >= s.quietFrom || m < s.quietTo
	}
	if !in {
		return time.Time{}, false
	}
	end := time.Date(t.Year(), t.Month(), t.Day(), s.quietTo/60, s.quietTo%60, 0, 0, t.Location())
	if !end.After(t) {
		end = end.AddDate(0, 0, 1)
	}
	return end, true
}

// Check validates a rule.
func (r Rule) Check() error {
	if !oneOf(r.On, Kinds) {
		return fmt.Errorf("unknown trigger %q: want one of %s", r.On, strings.Join(Kinds, ", "))
	}
	switch r.On {
	case "swarm":
		if r.Swarm == "" {
			return fmt.Errorf("a swarm rule needs --swarm")
		}
	case "sender":
		if r.Sender == "" {
			return fmt.Errorf("a sender rule needs --sender")
		}
	case "keyword":
		if strings.TrimSpace(r.Keyword) == "" {
			return fmt.Errorf("a keyword rule needs --keyword")
		}
	case "priority":
		if _, ok := priorities[r.Priority]; !ok || r.Priority == "" {
			return fmt.Errorf("a priority rule needs --priority low|normal|high|urgent")
		}
	case "system":
		if r.Event != "" && !oneOf(r.Event, SystemEvents) {
			return fmt.Errorf("unknown system event %q: want one of %s", r.Event, strings.Join(SystemEvents, ", "))
		}
	}
	return nil
}

// String describes the rule for history and dry runs.
func (r Rule) String() string {
	s := r.On
	switch r.On {
	case "keyword":
		s += " " + strconv.Quote(r.Keyword)
	case "priority":
		s += " >= " + r.Priority
	case "system":
		if r.Event != "" {
			s += " " + r.Event
		}
	}
	if r.Swarm != "" {
		s += " in " + r.Swarm
	}
	if r.Sender != "" {
		s += " from " + r.Sender
		if r.SenderKey != "" {
			s += " (key " + r.SenderKey + ")"
		}
	}
	return s
}

// Event is something that may wake the agent: a received message or a
// system event. Body is peer text: matched, never obeyed.
type Event struct {
	Kind     string `json:"kind"` // message or system
	ID       string `json:"id,omitempty"`
	Swarm    string `json:"swarm"`
	From     string `json:"from,omitempty"`
	FromKey  string `json:"from_key,omitempty"` // the sender's key fingerprint
	Direct   bool   `json:"direct,omitempty"`
	Priority string `json:"priority,omitempty"`
	Thread   string `json:"thread,omitempty"`
	Body     string `json:"-"`
	System   string `json:"system,omitempty"`
	Muted    bool   `json:"muted,omitempty"`
	// Aliases are other names of this agent that count as a mention (its
	// GitHub login, in issue comments the sync bot relays).
	Aliases []string `json:"-"`
	Framed  string   `json:"-"` // the event as the prompt shows it
	// frame makes Framed when the event joins a wake: most received
	// messages match no rule, and framing a large body is not free.
	frame func() string
}

// Match returns the first rule the event meets, or -1.
func (c Config) Match(self string, e Event) int {
	if e.Muted {
		return -1 // a muted swarm or agent never wakes the agent
	}
	for i, r := range c.Rules {
		if r.matches(self, e) {
			return i
		}
	}
	return -1
}

func (r Rule) matches(self string, e Event) bool {
	if r.Swarm != "" && r.Swarm != e.Swarm {
		return false
	}
	if r.Sender != "" && !strings.EqualFold(r.Sender, e.From) {
		return false
	}
	if r.SenderKey != "" && r.SenderKey != e.FromKey {
		return false
	}
	if e.Kind == "system" {
		return r.On == "system" && (r.Event == "" || r.Event == e.System)
	}
	switch r.On {
	case "any", "swarm", "sender":
		return true
	case "direct":
		return e.Direct
	case "mention":
		return mentions(e.Body, self) || mentionsAlias(e.Body, e.Aliases)
	case "keyword":
		return hasWord(e.Body, r.Keyword)
	case "priority":
		return priorities[e.Priority] >= priorities[r.Priority]
	}
	return false
}

// mentionsAlias: @alias for one of the agent's other names.
func mentionsAlias(body string, aliases []string) bool {
	for _, a := range aliases {
		if a != "" && hasWord(body, "@"+a) {
			return true
		}
	}
	return false
}

// mentions: @agent-a.example.com or @agent-a (the first label).
func mentions(body, self string) bool {
	short, _, _ := strings.Cut(self, ".")
	for _, name := range []string{self, short} {
		if name != "" && hasWord(body, "@"+name) {
			return true
		}
	}
	return false
}

// hasWord finds w in s, any case, not inside a longer word.
func hasWord(s, w string) bool {
	re, err := regexp.Compile(`(?i)(^|[^\p{L}\p{N}_.-])` + regexp.QuoteMeta(strings.TrimSpace(w)) + `($|[^\p{L}\p{N}_.-]|[.](\s|$))`)
	return err == nil && re.MatchString(s)
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
