package wake

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// Wake operations. Those that change what wakes the agent, or what a
// woken session may do and spend, are Local: the user's CLI has them, the
// model's MCP tools do not, so peer text can never talk a session into
// raising its own budget.
var wakeOps = []*ops.Op{
	{
		Name: "wake_rules", CLI: "wake rules", Summary: "Show the wake settings: whether wakes are on, the rules (numbered), limits and quiet hours.",
		ReadOnly: true, Idempotent: true,
		Run:  withExt(func(x *ext, a ops.Args) (any, error) { return x.rules() }),
		Text: ops.TextOf(textWake),
	},
	{
		Name: "wake_history", CLI: "wake history", Summary: "List recent wakes: trigger, messages, session, exit, duration, cost, result.",
		Params:   []ops.Param{{Name: "limit", Kind: ops.Int, Help: "at most this many (default 50)"}},
		ReadOnly: true, Idempotent: true,
		Run:  withExt(func(x *ext, a ops.Args) (any, error) { return x.history(a.Int("limit")) }),
		Text: ops.TextOf(textWakeHistory),
	},
	{
		Name: "wake_test", CLI: "wake test", Summary: "Dry-run the wake rules against a message: would it wake the agent now, by which rule, and what would hold it back. Nothing runs.",
		Params: []ops.Param{
			{Name: "body", Kind: ops.String, Positional: true, Help: "the message text"},
			ops.SwarmParam(),
			{Name: "from", Kind: ops.String, Help: "the sender's domain"},
			{Name: "priority", Kind: ops.String, Enum: wire.Priorities, Help: "low, normal, high or urgent"},
			{Name: "thread", Kind: ops.String, Help: "thread name or ID"},
			{Name: "direct", Kind: ops.Bool, Help: "a direct message to this agent"},
			{Name: "event", Kind: ops.String, Enum: SystemEvents, Help: "a system event instead of a message"},
		},
		ReadOnly: true, Idempotent: true,
		Run: withExt(func(x *ext, a ops.Args) (any, error) {
			return x.test(TestArgs{Swarm: a.Str("swarm"), From: a.Str("from"), Body: a.Str("body"),
				Priority: a.Str("priority"), Thread: a.Str("thread"), Event: a.Str("event"), Direct: a.Bool("direct")})
		}),
		Text: ops.TextOf(func(d Decision) string {
			s := "would not wake: " + d.Reason
			if d.Wake {
				s = "would wake (" + d.Rule + "): " + d.Reason
			}
			if d.NotTill != "" {
				s += ", not before " + ops.TextTime(d.NotTill)
			}
			return s
		}),
	},
	{
		Name: "wake_enable", CLI: "wake enable", Summary: "Turn wakes on: matching messages start a headless Claude Code session.",
		Local: true, Idempotent: true,
		Run: withExt(func(x *ext, a ops.Args) (any, error) {
			on := true
			return x.set(SetArgs{Enabled: &on})
		}),
		Text: ops.TextOf(textWake),
	},
	{
		Name: "wake_disable", CLI: "wake disable", Summary: "Turn wakes off (rules are kept).",
		Local: true, Idempotent: true,
		Run: withExt(func(x *ext, a ops.Args) (any, error) {
			off := false
			return x.set(SetArgs{Enabled: &off})
		}),
		Text: ops.TextOf(textWake),
	},
	{
		Name: "wake_add", CLI: "wake add", Summary: "Add a wake rule: on a direct message, a mention, a swarm, a sender, a keyword, a priority or a system event.",
		Params: []ops.Param{
			{Name: "on", Kind: ops.String, Required: true, Positional: true, Enum: Kinds, Help: "what fires it"},
			{Name: "swarm", Kind: ops.String, Help: "only in this swarm"},
			{Name: "sender", Kind: ops.String, Help: "only from this agent"},
			{Name: "keyword", Kind: ops.String, Help: "for on=keyword: a word in the text"},
			{Name: "priority", Kind: ops.String, Enum: wire.Priorities, Help: "for on=priority: this or higher"},
			{Name: "event", Kind: ops.String, Enum: SystemEvents, Help: "for on=system: which event (default all)"},
		},
		Local: true,
		Run: withExt(func(x *ext, a ops.Args) (any, error) {
			return x.add(Rule{On: a.Str("on"), Swarm: a.Str("swarm"), Sender: a.Str("sender"),
				Keyword: a.Str("keyword"), Priority: a.Str("priority"), Event: a.Str("event")})
		}),
		Text: ops.TextOf(textWake),
	},
	{
		Name: "wake_remove", CLI: "wake remove", Summary: "Remove wake rule N (as `swarm wake rules` numbers them).",
		Params: []ops.Param{{Name: "rule", Kind: ops.Int, Required: true, Positional: true, Help: "the rule's number"}},
		Local:  true, Destructive: true,
		Run:  withExt(func(x *ext, a ops.Args) (any, error) { return x.remove(a.Int("rule")) }),
		Text: ops.TextOf(textWake),
	},
	{
		Name: "wake_set", CLI: "wake set", Summary: "Change wake limits and how sessions run: quiet hours, cooldown, concurrency, daily budget, timeout, claude binary, directory, model, resume, extra allowed tools, extra environment.",
		Params: []ops.Param{
			{Name: "quiet", Kind: ops.String, Help: "no wakes in this local time span, e.g. 22:00-07:00 (empty: none)"},
			{Name: "cooldown", Kind: ops.String, Help: "between two wakes of one swarm/thread (default 2m)"},
			{Name: "gather", Kind: ops.String, Help: "wait this long after a first message so a burst is one wake (default 1s)"},
			{Name: "timeout", Kind: ops.String, Help: "kill a wake after this long (default 10m)"},
			{Name: "max_concurrent", Kind: ops.Int, Help: "wakes running at once (default 1)"},
			{Name: "daily_wakes", Kind: ops.Int, Help: "wakes per day (default 20)"},
			{Name: "daily_cost_usd", Kind: ops.String, Help: "cost per day in USD as the runs report it (0: no cap)"},
			{Name: "claude", Kind: ops.String, Help: "the claude executable (default claude on PATH)"},
			{Name: "dir", Kind: ops.String, Help: "working directory of woken sessions (default the node's home)"},
			{Name: "model", Kind: ops.String, Help: "model for woken sessions"},
			{Name: "resume", Kind: ops.String, Enum: []string{"true", "false"}, Help: "continue the last session of the same swarm/thread"},
			{Name: "allowed_tools", Kind: ops.Strings, Help: "tools allowed beyond the swarm tools (comma-separated); built-in ones (Read, Bash(git log:*)) are the only built-ins a woken session has"},
			{Name: "env", Kind: ops.Strings, Help: "environment for woken sessions beyond the standard list: NAME (the daemon's value) or NAME=VALUE, comma-separated (empty: none)"},
		},
		Local: true, Idempotent: true,
		Run:  withExt(runWakeSet),
		Text: ops.TextOf(textWake),
	},
}

func runWakeSet(x *ext, a ops.Args) (any, error) {
	var s SetArgs
	str := func(k string) *string {
		if _, ok := a[k]; !ok {
			return nil
		}
		v := a.Str(k)
		return &v
	}
	num := func(k string) *int {
		if _, ok := a[k]; !ok {
			return nil
		}
		v := a.Int(k)
		return &v
	}
	s.Quiet, s.Cooldown, s.Gather, s.Timeout = str("quiet"), str("cooldown"), str("gather"), str("timeout")
	s.Claude, s.Dir, s.Model = str("claude"), str("dir"), str("model")
	s.MaxConcurrent, s.DailyWakes = num("max_concurrent"), num("daily_wakes")
	if v := str("daily_cost_usd"); v != nil {
		f, err := strconv.ParseFloat(*v, 64)
		if err != nil || f < 0 {
			return nil, node.Userf("daily_cost_usd %q: want a number of dollars such as 5 or 2.50", *v)
		}
		s.DailyCostUSD = &f
	}
	if v := str("resume"); v != nil {
		b := *v == "true"
		s.Resume = &b
	}
	if _, ok := a["allowed_tools"]; ok {
		var tools []string
		for _, t := range a.Strs("allowed_tools") {
			for _, x := range strings.Split(t, ",") {
				if x = strings.TrimSpace(x); x != "" {
					tools = append(tools, x)
				}
			}
		}
		s.AllowedTools = &tools
	}
	if _, ok := a["env"]; ok {
		env := []string{}
		for _, e := range a.Strs("env") {
			if e = strings.TrimSpace(e); e != "" {
				env = append(env, e)
			}
		}
		s.Env = &env
	}
	return x.set(s)
}

// withExt runs f on the node's wake extension.
func withExt(f func(x *ext, a ops.Args) (any, error)) func(context.Context, *node.Node, ops.Args) (any, error) {
	return func(_ context.Context, n *node.Node, a ops.Args) (any, error) {
		x, err := of(n)
		if err != nil {
			return nil, err
		}
		return f(x, a)
	}
}

func textWake(w Info) string {
	var b strings.Builder
	state := "off"
	if w.Enabled {
		state = "on"
	}
	fmt.Fprintf(&b, "wake: %s", state)
	if !w.Daemon {
		b.WriteString(" (nothing wakes until `swarm serve` runs)")
	}
	fmt.Fprintf(&b, "\nlimits: cooldown %s, gather %s, timeout %s, max concurrent %s, daily wakes %s, daily cost %s, quiet %s",
		or(w.Cooldown, "2m"), or(w.Gather, "1s"), or(w.Timeout, "10m"), orInt(w.MaxConcurrent, "1"), orInt(w.DailyWakes, "20"),
		map[bool]string{true: fmt.Sprintf("$%.2f", w.DailyCostUSD), false: "no cap"}[w.DailyCostUSD > 0], or(w.Quiet, "none"))
	claude := or(w.Claude, "claude")
	if w.ClaudePath != "" && w.ClaudePath != claude {
		claude += " (" + w.ClaudePath + ")"
	}
	fmt.Fprintf(&b, "\nsession: %s in %s, resume %v, MCP config %s", claude, or(w.Dir, "(node home)"), w.Resume, w.MCPConfig)
	if len(w.AllowedTools) > 0 {
		fmt.Fprintf(&b, ", also allowed: %s", strings.Join(w.AllowedTools, ","))
	}
	if len(w.Env) > 0 {
		fmt.Fprintf(&b, ", also in the environment: %s", strings.Join(w.Env, ","))
	}
	if w.ClaudeError != "" {
		fmt.Fprintf(&b, "\nwarning: %s", w.ClaudeError)
	}
	if len(w.Rules) == 0 {
		b.WriteString("\nno rules (swarm wake add direct, for example)")
	}
	for i, r := range w.Rules {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, r)
	}
	return b.String()
}

// textWakeHistory shows each wake's outcome as the session reported it:
// exit code, why it failed, the tools it was refused, and its result.
func textWakeHistory(rs []Record) string {
	if len(rs) == 0 {
		return "no wakes yet"
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s  %-8s %-20s %d msg", ops.TextTime(r.Started), r.Status, r.Group, len(r.Messages))
		if r.Status != "skipped" {
			fmt.Fprintf(&b, ", exit %d, %.1fs", r.Exit, float64(r.DurationMs)/1000)
		}
		if r.CostUSD > 0 {
			fmt.Fprintf(&b, ", $%.4f", r.CostUSD)
		}
		if r.SessionID != "" {
			fmt.Fprintf(&b, ", session %s", r.SessionID)
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "\n    error: %s", oneLine(r.Error, 300))
		}
		if len(r.Denied) > 0 {
			fmt.Fprintf(&b, "\n    denied: %s (allow more with swarm wake set --allowed-tools)", strings.Join(r.Denied, ", "))
		}
		// The result is the session's last word; an error that already
		// quotes it is not repeated.
		if res := oneLine(r.Result, 300); res != "" && !strings.Contains(oneLine(r.Error, 1000), res) {
			fmt.Fprintf(&b, "\n    result: %s", res)
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// oneLine folds s onto one line and clips it to n bytes on a rune boundary.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orInt(i int, def string) string {
	if i <= 0 {
		return def
	}
	return strconv.Itoa(i)
}
