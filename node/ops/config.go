package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
)

// configOps read and change the node's config.json: its addresses and
// limits. They are the user's (Local): a model never moves its node.
var configOps = []*Op{
	{
		Name: "config_get", CLI: "config get", Summary: "Show the node's settings from config.json: listen, advertise and the limits (or one KEY's value alone).",
		Params: []Param{{Name: "key", Kind: String, Positional: true, Enum: node.ConfigKeys(), Help: "one key"}},
		Local:  true, ReadOnly: true, Idempotent: true,
		Run:  func(ctx context.Context, n *node.Node, a Args) (any, error) { return n.ConfigGet(a.Str("key")) },
		Text: textOf(textConfig),
	},
	{
		Name: "config_set", CLI: "config set", Summary: "Change one setting in config.json (validated). A running daemon keeps its settings: the change applies at the next `swarm serve`.",
		Params: []Param{
			{Name: "key", Kind: String, Required: true, Positional: true, Enum: node.ConfigKeys(), Help: "the key"},
			{Name: "value", Kind: String, Required: true, Positional: true, Help: "its new value"},
		},
		Local: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.ConfigSet(a.Str("key"), a.Str("value"))
		},
		Text: textOf(func(e node.ConfigEntry) string {
			s := fmt.Sprintf("%s = %s\napplies at the next start of the node: restart `swarm serve` if it is running", e.Key, e.Value)
			if e.Key == "advertise" {
				s += "\nswarms joined already keep the old address in their membership log; new invites and joins carry this one"
			}
			if e.Note != "" {
				s += "\nnote: " + e.Note
			}
			return s
		}),
	},
}

// textConfig shows one key's value alone (for scripts), or a table.
func textConfig(es []node.ConfigEntry) string {
	if len(es) == 1 {
		return es[0].Value
	}
	var b strings.Builder
	for _, e := range es {
		def := ""
		if e.Default {
			def = "  (default)"
		}
		fmt.Fprintf(&b, "%-15s %s%s\n", e.Key, e.Value, def)
	}
	for _, e := range es {
		if e.Note != "" {
			b.WriteString("note: " + e.Note + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
