package ops

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
)

// TestExtendHook: an extension's parameters join a core operation; a call
// that sets one (a Bool set to false does not count) is the hook's, any
// other the core's, and each result is rendered by its own Text.
func TestExtendHook(t *testing.T) {
	Register(&Op{Name: "test_extend", CLI: "test extend", Summary: "test only", Local: true,
		Params: []Param{{Name: "body", Kind: String}},
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return map[string]string{"by": "core"}, nil
		},
		Text: textOf(func(v map[string]string) string { return "core text" })})
	Extend("test_extend", Hook{
		Params: []Param{{Name: "other", Kind: Bool}, {Name: "n", Kind: Int}},
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return map[string]string{"by": "hook"}, nil
		},
		Text: func(out json.RawMessage) (string, bool) {
			var v map[string]string
			if json.Unmarshal(out, &v) != nil || v["by"] != "hook" {
				return "", false
			}
			return "hook text", true
		},
	})
	op := Find("test_extend")
	if len(op.Params) != 3 || op.Params[1].Name != "other" || op.Params[2].Name != "n" {
		t.Fatalf("params after Extend: %+v", op.Params)
	}
	for _, c := range []struct {
		args     map[string]any
		by, text string
	}{
		{map[string]any{"body": "x"}, "core", "core text"},
		{map[string]any{"other": false}, "core", "core text"},
		{map[string]any{"other": true}, "hook", "hook text"},
		{map[string]any{"n": 0}, "hook", "hook text"},
		{map[string]any{"other": false, "n": 3}, "hook", "hook text"},
	} {
		res, err := Call(context.Background(), nil, "test_extend", c.args)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(res)
		text, err := op.Text(out)
		if err != nil {
			t.Fatal(err)
		}
		if by := res.(map[string]string)["by"]; by != c.by || text != c.text {
			t.Errorf("%v: run by %s rendered %q, want %s and %q", c.args, by, text, c.by, c.text)
		}
	}
}
