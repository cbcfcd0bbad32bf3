package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wake"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Store keys of the wake engine (see store's key list):
//
//	k/<unix nanos, 20 digits>/<id>  wake.Record, the history
//	ks/<group>                      session id to resume for a swarm/thread
const wakeMCPFile = "wake-mcp.json"

// WakeOptions change how wakes run (tests point Claude at a fake).
type WakeOptions struct {
	// Run starts the wake engine. Only the daemon (`swarm serve`) sets
	// it: a node opened in-process by `swarm mcp` or a one-shot command
	// runs no wakes (they would ignore the daemon's cooldown and budget,
	// and die with the session that opened the node).
	Run bool
	// Swarm is the swarm binary the woken session's MCP config starts
	// (`swarm mcp --home HOME`); default this executable.
	Swarm string
}

// startWake makes the engine; the daemon feeds it and runs it.
func (n *Node) startWake(o WakeOptions) error {
	if !o.Run {
		return nil
	}
	cfg := wake.Config{}
	if n.cfg.Wake != nil {
		cfg = *n.cfg.Wake
	}
	mcpFile, err := n.writeWakeMCP(o.Swarm)
	if err != nil {
		return err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = n.home
	}
	run := wake.Claude{Bin: cfg.Claude, Dir: dir, MCPConfig: mcpFile, Home: n.home, Self: n.cfg.Domain, Model: cfg.Model,
		Extra: cfg.AllowedTools, Env: cfg.Env, Log: n.log}
	e, err := wake.New(n.cfg.Domain, cfg, wakeRunner{n, run}, wakeBook{n}, n.log, n.now)
	if err != nil {
		return fmt.Errorf("%s: wake: %w", filepath.Join(n.home, ConfigFile), err)
	}
	n.wake = e
	n.loop(func() { e.Run(n.ctx) })
	return nil
}

// wakeRunner rereads the settings a user may change while the daemon runs.
type wakeRunner struct {
	n   *Node
	run wake.Claude
}

func (w wakeRunner) Run(ctx context.Context, j wake.Job, timeout time.Duration) wake.Result {
	r, c := w.run, w.n.wakeConfig()
	r.Bin, r.Model, r.Extra, r.Env = c.Claude, c.Model, c.AllowedTools, c.Env
	if c.Dir != "" {
		r.Dir = c.Dir
	}
	return r.Run(ctx, j, timeout)
}

// writeWakeMCP writes the MCP config a woken session uses: this node's
// `swarm mcp`, which attaches to the running daemon. Its path and the home
// in it are absolute (Open made the home so): the session runs in another
// directory.
func (n *Node) writeWakeMCP(bin string) (string, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		bin = exe
	}
	cfg := map[string]any{"mcpServers": map[string]any{"swarm": map[string]any{
		"type": "stdio", "command": bin, "args": []string{"mcp", "--home", n.home},
	}}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	p := filepath.Join(n.home, wakeMCPFile)
	return p, writeFile(p, append(b, '\n'), 0o600)
}

func (n *Node) wakeConfig() wake.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.Wake == nil {
		return wake.Config{}
	}
	return *n.cfg.Wake
}

// offerWake hands a stored message to the engine (daemon only). With
// wakes off it costs nothing on the receive path.
func (n *Node) offerWake(m wire.Message, key string) {
	if n.wake == nil || !n.wake.Enabled() {
		return
	}
	v, err := n.inboxView()
	if err != nil {
		return
	}
	im := v.show(&InboxItem{Msg: m, Key: key, Received: n.now().UnixMilli()}, false)
	ev := wake.Event{Kind: "message", ID: m.ID, Swarm: im.Swarm, From: m.From, FromKey: im.Sender.Fingerprint, Direct: im.Direct,
		Priority: m.Priority, Thread: m.Thread, Body: m.Body, Muted: im.Muted, Framed: Frame(im)}
	login := ""
	if as := n.Aliases(); len(as) > 0 {
		login = as[0]
	}
	for _, r := range m.Refs {
		if r.Kind != "issue" {
			continue
		}
		// A task assigned to this agent's GitHub login (relayed by the
		// sync bot, or announced directly) is a system event.
		if r.Action == "assigned" && (im.Direct || (login != "" && strings.EqualFold(r.Login, login))) {
			ev.Kind, ev.System = "system", "task_assigned"
		}
		ev.Alias = login // @login in an issue comment mentions this agent
	}
	d := n.wake.Offer(ev)
	n.log.Debug().Str("id", m.ID).Bool("wake", d.Wake).Str("why", d.Reason).Msg("wake decision")
}

// offerSystem hands a membership event to the engine.
func (n *Node) offerSystem(swarmName, event, agent string) {
	if n.wake == nil || !n.wake.Enabled() {
		return
	}
	text := fmt.Sprintf("Swarm event in %q: %s (%s). This comes from the signed membership log.", swarmName, strings.ReplaceAll(event, "_", " "), agent)
	n.wake.Offer(wake.Event{Kind: "system", Swarm: swarmName, From: agent, System: event, Framed: text})
}

// systemEvents offers what new membership records mean to a user.
func (n *Node) systemEvents(swarmName string, recs []wire.Signed) {
	for _, sg := range recs {
		r, err := wire.ParseRecord(sg.Payload)
		if err != nil {
			continue
		}
		switch r.Type {
		case wire.RecAdd:
			if r.Member != nil && r.Member.Domain != n.cfg.Domain {
				n.offerSystem(swarmName, "joined", r.Member.Domain)
			}
		case wire.RecRemove:
			if r.Reason == wire.ReasonKick {
				n.offerSystem(swarmName, "kicked", r.Agent)
			}
		case wire.RecTransfer:
			n.offerSystem(swarmName, "master_changed", r.Agent)
		}
	}
}

// wakeBook keeps wake history and sessions in the store.
type wakeBook struct{ n *Node }

func wakeKey(t time.Time, id string) []byte {
	return store.Key("k", fmt.Sprintf("%020d", t.UnixNano()), id)
}

func (b wakeBook) Add(r wake.Record) error {
	t, err := time.Parse(time.RFC3339Nano, r.Started)
	if err != nil {
		t = b.n.now()
	}
	return b.n.st.Update(func(tx *store.Tx) error { return tx.PutTTL(wakeKey(t, r.ID), r, 30*24*time.Hour) })
}

func (b wakeBook) Since(t time.Time) ([]wake.Record, error) {
	var out []wake.Record
	err := b.n.st.View(func(tx *store.Tx) error {
		return tx.Scan(store.Key("k", ""), wakeKey(t, ""), func(_ []byte, dec func(any) error) (bool, error) {
			var r wake.Record
			if err := dec(&r); err != nil {
				return false, err
			}
			out = append(out, r)
			return true, nil
		})
	})
	return out, err
}

func (b wakeBook) Session(g string) string {
	var s string
	_ = b.n.st.View(func(tx *store.Tx) error { return tx.Get(store.Key("ks", g), &s) })
	return s
}

func (b wakeBook) SetSession(g, id string) error {
	return b.n.st.Update(func(tx *store.Tx) error { return tx.Put(store.Key("ks", g), id) })
}
