package ops

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agent-swarm/agent-swarm/node"
)

// Extensions add their operations to the table from their package's init
// (Register), and may add parameters to a core operation (Extend): the
// table the faces build from is the core's operations and every
// included extension's.

// Register adds operations to the table. It panics on a name or a CLI
// path already taken: a programming error found at start.
func Register(add ...*Op) {
	for _, op := range add {
		for _, have := range table {
			if have.Name == op.Name || have.CLI == op.CLI {
				panic(fmt.Sprintf("ops.Register: %q (%s) is taken by %q", op.Name, op.CLI, have.Name))
			}
		}
		table = append(table, op)
	}
}

// Hook is an extension's part of a core operation: its parameters are
// added to the operation's, and when a call sets any of them (a Bool set
// to false counts as not set), Run answers it in place of the core's Run.
// Text, when set, renders the results Run makes: it says ok for those,
// and the core's Text renders any other.
type Hook struct {
	Params []Param
	Run    func(ctx context.Context, n *node.Node, a Args) (any, error)
	Text   func(out json.RawMessage) (text string, ok bool)
}

// Extend adds h to the core operation named name. It panics when there
// is none or a parameter name is taken.
func Extend(name string, h Hook) {
	op := Find(name)
	if op == nil {
		panic(fmt.Sprintf("ops.Extend: no operation %q", name))
	}
	for _, p := range h.Params {
		for _, have := range op.Params {
			if have.Name == p.Name {
				panic(fmt.Sprintf("ops.Extend: %q already has parameter %q", name, p.Name))
			}
		}
	}
	op.Params = append(op.Params, h.Params...)
	core := op.Run
	op.Run = func(ctx context.Context, n *node.Node, a Args) (any, error) {
		for _, p := range h.Params {
			if v, set := a[p.Name]; set && v != false {
				return h.Run(ctx, n, a)
			}
		}
		return core(ctx, n, a)
	}
	if h.Text != nil {
		coreText := op.Text
		op.Text = func(out json.RawMessage) (string, error) {
			if s, ok := h.Text(out); ok {
				return s, nil
			}
			return coreText(out)
		}
	}
}
