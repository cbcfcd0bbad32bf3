package wake

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/store"
)

// Store keys of the wake engine (see store's key list):
//
//	k/<unix nanos, 20 digits>/<id>  Record, the history
//	ks/<group>                      session id to resume for a swarm/thread
const mcpFile = "wake-mcp.json"

// runner rereads the settings a user may change while the daemon runs.
type runner struct {
	x   *ext
	run Claude
}

func (w runner) Run(ctx context.Context, j Job, timeout time.Duration) Result {
	r := w.run
	c, err := w.x.config()
	if err != nil {
		w.x.log.Warn().Err(err).Msg("wake: settings unreadable; the wake runs with those the daemon started with")
		return r.Run(ctx, j, timeout)
	}
	r.Bin, r.Model, r.Extra, r.Env = c.Claude, c.Model, c.AllowedTools, c.Env
	if c.Dir != "" {
		r.Dir = c.Dir
	}
	return r.Run(ctx, j, timeout)
}

// writeMCP writes the MCP config a woken session uses: this node's
// `swarm mcp`, which attaches to the running daemon. Its path and the home
// in it are absolute (Open made the home so): the session runs in another
// directory.
func (x *ext) writeMCP(bin string) (string, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		bin = exe
	}
	cfg := map[string]any{"mcpServers": map[string]any{"swarm": map[string]any{
		"type": "stdio", "command": bin, "args": []string{"mcp", "--home", x.n.Home()},
	}}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	p := filepath.Join(x.n.Home(), mcpFile)
	return p, node.WriteFileAtomic(p, append(b, '\n'), 0o600)
}

// book keeps wake history and sessions in the node's store.
type book struct{ n *node.Node }

func historyKey(t time.Time, id string) []byte {
	return store.Key("k", fmt.Sprintf("%020d", t.UnixNano()), id)
}

func (b book) Add(r Record) error {
	t, err := time.Parse(time.RFC3339Nano, r.Started)
	if err != nil {
		t = b.n.Now()
	}
	return b.n.Store().Update(func(tx *store.Tx) error { return tx.PutTTL(historyKey(t, r.ID), r, 30*24*time.Hour) })
}

func (b book) Since(t time.Time) ([]Record, error) {
	var out []Record
	err := b.n.Store().View(func(tx *store.Tx) error {
		return tx.Scan(store.Key("k", ""), historyKey(t, ""), func(_ []byte, dec func(any) error) (bool, error) {
			var r Record
			if err := dec(&r); err != nil {
				return false, err
			}
			out = append(out, r)
			return true, nil
		})
	})
	return out, err
}

func (b book) Session(g string) string {
	var s string
	_ = b.n.Store().View(func(tx *store.Tx) error { return tx.Get(store.Key("ks", g), &s) })
	return s
}

func (b book) SetSession(g, id string) error {
	return b.n.Store().Update(func(tx *store.Tx) error { return tx.Put(store.Key("ks", g), id) })
}
