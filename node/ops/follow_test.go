package ops

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/rs/zerolog"
)

// Follow carries on from the last message it handed out; when the message
// it follows from is gone (the wait refuses it), it starts again from now
// instead of failing for ever; a node fault is retried.
func TestFollow(t *testing.T) {
	var calls []string
	replies := []struct {
		out string
		err error
	}{
		{`[{"id":"m1"},{"id":"m2"}]`, nil},
		{"", node.NotFoundf("no message m2 in the inbox")}, // m2 deleted meanwhile
		{`[]`, nil},
		{"", errors.New("store busy")},
		{`[{"id":"m3"}]`, nil},
	}
	call := func(_ context.Context, name string, args map[string]any) (json.RawMessage, error) {
		if name != "wait" {
			t.Fatalf("called %q", name)
		}
		after, _ := args["after"].(string)
		calls = append(calls, after)
		r := replies[len(calls)-1]
		return json.RawMessage(r.out), r.err
	}
	var got []int
	Follow(context.Background(), call, "m0", time.Second, zerolog.Nop(), func(msgs []json.RawMessage) bool {
		got = append(got, len(msgs))
		return len(calls) < len(replies)
	})
	want := []string{"m0", "m2", "", "", ""}
	if len(calls) != len(want) {
		t.Fatalf("calls from %q, want %q", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("calls from %q, want %q", calls, want)
		}
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("batches %v", got)
	}
}
