// Package ops is the one table of operations. The CLI, the local API and
// the MCP tools are faces over it: each operation is declared here once,
// with its parameters (from which the faces build flags and JSON schemas),
// its annotations, and the node method it calls.
package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
)

// Kinds of parameter.
const (
	String   = "string"
	Int      = "int"
	Bool     = "bool"
	Duration = "duration" // "90s", "1h30m"
	Strings  = "strings"
	// Path is a file name. Every face hands the node an absolute one (the
	// CLI makes a relative name absolute in the caller's directory): the
	// node may run in a daemon started elsewhere.
	Path = "path"
)

// Param is one argument of an operation.
type Param struct {
	Name       string
	Kind       string
	Help       string
	Required   bool
	Positional bool // the CLI takes it without a flag (in declaration order)
	Enum       []string
	// Min and Max bound an Int that is given (when Max > 0): a value out
	// of them is refused, never bent to a default (issue #16: --uses 0
	// silently became 1). Not giving it still means the default.
	Min, Max int
}

// Op is one operation.
type Op struct {
	Name        string // snake_case; the MCP tool is swarm_<Name>
	CLI         string // words after `swarm`
	Summary     string
	Params      []Param
	ReadOnly    bool
	Destructive bool
	Idempotent  bool
	Network     bool // talks to peers: a one-shot CLI node flushes its outbox after it
	// Local operations are for the user (CLI, local API), never MCP tools:
	// they change what the model itself may do or spend.
	Local bool
	Run   func(ctx context.Context, n *node.Node, a Args) (any, error)
	Text  func(json.RawMessage) (string, error) // human rendering of the JSON result
	// ModelText is set on the operations whose results are mostly peer
	// messages (inbox, wait, members): it is the rendering a model reads
	// (the text content of the MCP tool result, and a "text" field of its
	// structured content) in place of Text, with the peer text framed
	// (node.Frame), while the CLI keeps its terse Text. The MCP face
	// escapes every string of every result's structured content, and the
	// Text of the others (node.EscapePeer).
	ModelText func(json.RawMessage) (string, error)
}

// TextFor returns the model's rendering of an operation's result when
// forModel, else the human one.
func (op *Op) TextFor(out json.RawMessage, forModel bool) (string, error) {
	if forModel && op.ModelText != nil {
		return op.ModelText(out)
	}
	return op.Text(out)
}

// Args are validated arguments.
type Args map[string]any

func (a Args) Str(k string) string { s, _ := a[k].(string); return s }
func (a Args) Int(k string) int    { i, _ := a[k].(int); return i }
func (a Args) Bool(k string) bool  { b, _ := a[k].(bool); return b }
func (a Args) Dur(k string) time.Duration {
	d, _ := a[k].(time.Duration)
	return d
}
func (a Args) Strs(k string) []string { s, _ := a[k].([]string); return s }

func init() { Register(configOps...) }

// Find returns the operation named name.
func Find(name string) *Op {
	for _, op := range table {
		if op.Name == name {
			return op
		}
	}
	return nil
}

// All returns every operation, in table order.
func All() []*Op { return table }

// Validate turns raw JSON-shaped arguments into typed Args, naming the
// first problem as a user error. Errors reach every face as text (the
// daemon validates for the CLI too), so they name things the same way in
// each: the command's words, the parameter's name and the value as given,
// `wake add: on "bogus": not one of …`, never a face's own spelling of it
// (`--flag`, a positional's place, a JSON key).
func (op *Op) Validate(raw map[string]any) (Args, error) {
	known := map[string]bool{}
	a := Args{}
	for _, p := range op.Params {
		known[p.Name] = true
		v, ok := raw[p.Name]
		if !ok || v == nil {
			if p.Required {
				return nil, node.Userf("%s: missing required argument %q (%s)", op.CLI, p.Name, p.Help)
			}
			continue
		}
		tv, err := convert(p, v)
		if err == nil {
			err = inBounds(p, tv)
		}
		if err != nil {
			return nil, node.Userf("%s: %s %s: %v", op.CLI, p.Name, shown(v), err)
		}
		a[p.Name] = tv
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, node.Userf("%s: unknown argument %s", op.CLI, strings.Join(unknown, ", "))
	}
	return a, nil
}

// inBounds checks an Int given against its parameter's bounds.
func inBounds(p Param, v any) error {
	i, ok := v.(int)
	if !ok || p.Max <= 0 || (i >= p.Min && i <= p.Max) {
		return nil
	}
	return fmt.Errorf("outside [%d, %d]", p.Min, p.Max)
}

func convert(p Param, v any) (any, error) {
	switch p.Kind {
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string")
		}
		if len(p.Enum) > 0 && !contains(p.Enum, s) {
			return nil, fmt.Errorf("not one of %s", strings.Join(p.Enum, ", "))
		}
		return s, nil
	case Int:
		switch x := v.(type) {
		case float64:
			if x != float64(int(x)) {
				return nil, fmt.Errorf("want a whole number")
			}
			return int(x), nil
		case int:
			return x, nil
		case json.Number:
			i, err := x.Int64()
			return int(i), err
		case string:
			i, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want a whole number")
			}
			return i, nil
		}
		return nil, fmt.Errorf("want a whole number")
	case Path:
		s, ok := v.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("want a file name")
		}
		if !filepath.IsAbs(s) {
			return nil, fmt.Errorf("want an absolute file name")
		}
		return filepath.Clean(s), nil
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch x {
			case "true", "1", "yes":
				return true, nil
			case "false", "0", "no":
				return false, nil
			}
		}
		return nil, fmt.Errorf("want true or false")
	case Duration:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a duration such as \"90s\" or \"2h\"")
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("want a duration such as \"90s\" or \"2h\"")
		}
		return d, nil
	case Strings:
		switch x := v.(type) {
		case []string:
			return x, nil
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("want a list of strings")
				}
				out = append(out, s)
			}
			return out, nil
		case string:
			return []string{x}, nil
		}
		return nil, fmt.Errorf("want a list of strings")
	}
	return nil, fmt.Errorf("unknown parameter kind %s", p.Kind)
}

// shown is a value as the caller gave it, for an error: quoted, clipped.
func shown(v any) string {
	s, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprintf("%T", v)
		}
		s = string(b)
	}
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "?"))
}

func contains(set []string, s string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// Call validates raw arguments and runs the operation.
func Call(ctx context.Context, n *node.Node, name string, raw map[string]any) (any, error) {
	op := Find(name)
	if op == nil {
		return nil, node.Userf("unknown operation %q", name)
	}
	a, err := op.Validate(raw)
	if err != nil {
		return nil, err
	}
	return op.Run(ctx, n, a)
}
