package wake

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/rs/zerolog"
)

// The wake extension: the node hands it every peer message and the
// membership records it applies; in the daemon (`swarm serve`) it runs
// the engine that starts a headless Claude Code session for those that
// match a rule. Its settings are config.json's "wake" section, its
// history and sessions are under the store prefixes k/ and ks/.

// Name is the extension's name and its config.json section.
const Name = "wake"

// Options are what a caller, not the config file, decides
// (node.Options.Ext[Name]; tests point them at fakes).
type Options struct {
	// Swarm is the swarm binary the woken session's MCP config starts
	// (`swarm mcp --home HOME`); default this executable.
	Swarm string
}

func init() {
	node.Register(node.ExtensionInfo{Name: Name, Prefixes: []string{"k/", "ks/"}, New: open, DaemonEnv: daemonEnv})
	ops.Register(wakeOps...)
}

// ext is the extension on one node.
type ext struct {
	n   *node.Node
	log zerolog.Logger
	// engine runs wakes: the daemon's alone (a node opened in-process by
	// `swarm mcp` or a one-shot command runs none: they would ignore the
	// daemon's cooldown and budget, and die with the session that opened
	// the node). Set once in open.
	engine *Engine
	counts counts     // wakes run, by status (metrics.go)
	mu     sync.Mutex // serialises changes of the settings
}

func open(n *node.Node) (node.Extension, error) {
	x := &ext{n: n, log: n.Log()}
	if !n.Daemon() {
		return x, nil
	}
	o, _ := n.ExtOptions(Name).(Options)
	cfg, err := x.config()
	if err != nil {
		return nil, err
	}
	mcpFile, err := x.writeMCP(o.Swarm)
	if err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = n.Home()
	}
	run := Claude{Bin: cfg.Claude, Dir: dir, MCPConfig: mcpFile, Home: n.Home(), Self: n.Domain(), Model: cfg.Model,
		Extra: cfg.AllowedTools, Env: cfg.Env, Log: n.Log()}
	e, err := New(n.Domain(), cfg, runner{x, run}, countingBook{book{n}, &x.counts}, n.Log(), n.Now)
	if err != nil {
		return nil, fmt.Errorf("%s: wake: %w", filepath.Join(n.Home(), node.ConfigFile), err)
	}
	x.engine = e
	n.Go(e.Run)
	return x, nil
}

// Close has nothing to stop: the engine ends with the node's context.
func (x *ext) Close() error { return nil }

// of is the wake extension of n.
func of(n *node.Node) (*ext, error) {
	x, ok := n.Ext(Name).(*ext)
	if !ok {
		return nil, errors.New("this node runs without the wake extension")
	}
	return x, nil
}

// config reads the settings as config.json has them now.
func (x *ext) config() (Config, error) {
	var c Config
	err := x.n.ExtConfig(Name, &c)
	return c, err
}

// daemonEnv names what of the starting command's environment a woken
// session needs: the standard list and the names the settings pass on
// (those without a value).
func daemonEnv(cfg *node.Config) []string {
	names := append([]string{}, PassEnv...)
	var c Config
	if raw, ok := cfg.Ext[Name]; ok {
		if err := json.Unmarshal(raw, &c); err != nil {
			return names // the daemon itself says what is wrong with the section
		}
	}
	for _, e := range c.Env {
		if name, _, hasValue := strings.Cut(e, "="); !hasValue {
			names = append(names, name)
		}
	}
	return names
}

// HandleEvent offers peers' messages and membership changes to the
// engine. With wakes off it costs nothing on the receive path.
func (x *ext) HandleEvent(ev node.Event) {
	if x.engine == nil || !x.engine.Enabled() {
		return
	}
	switch ev.Kind {
	case node.EventMessage:
		if !ev.Local && ev.Message != nil {
			x.offerMessage(*ev.Message, ev.SenderKey)
		}
	case node.EventMembership:
		x.systemEvents(ev.SwarmName, ev.Records)
	}
}

// offerMessage hands a stored message to the engine as the inbox shows it.
func (x *ext) offerMessage(m wire.Message, key string) {
	im, err := x.n.InboxMessageOf(m, key)
	if err != nil {
		return
	}
	ev := Event{Kind: "message", ID: m.ID, Swarm: im.Swarm, From: m.From, FromKey: im.Sender.Fingerprint, Direct: im.Direct,
		Priority: m.Priority, Thread: m.Thread, Body: m.Body, Muted: im.Muted,
		frame: func() string { return node.Frame(im) }}
	aliases := x.n.Aliases()
	for _, r := range m.Refs {
		if r.Kind != "issue" {
			continue
		}
		// A task assigned to one of this agent's other names (its GitHub
		// login: relayed by the sync bot, or announced directly) is a
		// system event.
		if r.Action == "assigned" && (im.Direct || hasAlias(aliases, r.Login)) {
			ev.Kind, ev.System = "system", "task_assigned"
		}
		ev.Aliases = aliases // @login in an issue comment mentions this agent
	}
	d := x.engine.Offer(ev)
	x.log.Debug().Str("id", m.ID).Bool("wake", d.Wake).Str("why", d.Reason).Msg("wake decision")
}

func hasAlias(aliases []string, name string) bool {
	for _, a := range aliases {
		if a != "" && strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// systemEvents offers what new membership records mean to a user. It runs
// with the core's lock held: it only reads the records and the engine.
func (x *ext) systemEvents(swarmName string, recs []wire.Signed) {
	for _, sg := range recs {
		r, err := wire.ParseRecord(sg.Payload)
		if err != nil {
			continue
		}
		switch r.Type {
		case wire.RecAdd:
			if r.Member != nil && r.Member.Domain != x.n.Domain() {
				x.offerSystem(swarmName, "joined", r.Member.Domain)
			}
		case wire.RecRemove:
			if r.Reason == wire.ReasonKick {
				x.offerSystem(swarmName, "kicked", r.Agent)
			}
		case wire.RecTransfer:
			x.offerSystem(swarmName, "master_changed", r.Agent)
		}
	}
}

// offerSystem hands a membership event to the engine.
func (x *ext) offerSystem(swarmName, event, agent string) {
	x.engine.Offer(Event{Kind: "system", Swarm: swarmName, From: agent, System: event, Framed: systemText(swarmName, event, agent)})
}

// systemText is a membership event as the wake prompt shows it. The
// swarm's name is the master's choice (any printable text, look-alike
// tags included), so the line is escaped like all peer text.
func systemText(swarmName, event, agent string) string {
	return node.EscapePeer(fmt.Sprintf("Swarm event in %q: %s (%s). This comes from the signed membership log.", swarmName, strings.ReplaceAll(event, "_", " "), agent))
}
