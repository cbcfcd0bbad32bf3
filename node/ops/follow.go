package ops

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/rs/zerolog"
)

// CallFunc runs an operation by name: a local API client's Call, or the
// table on an in-process node.
type CallFunc func(ctx context.Context, name string, args map[string]any) (json.RawMessage, error)

// Follow follows the inbox: it calls the wait operation in a loop, from
// the message after (an ID; "" is from now), and hands each batch it
// returns (each message as the inbox's JSON; empty when a wait timed
// out) to each, until ctx ends or each returns false. A failed wait is
// retried a second later; a wait refused because the message named is
// gone (deleted since) starts again from now, rather than failing for
// ever. The faces that push new messages (MCP notifications, the web
// page's stream) share it.
func Follow(ctx context.Context, call CallFunc, after string, timeout time.Duration, log zerolog.Logger, each func([]json.RawMessage) bool) {
	for ctx.Err() == nil {
		args := map[string]any{"timeout": timeout.String()}
		if after != "" {
			args["after"] = after
		}
		out, err := call(ctx, "wait", args)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if node.IsUser(err) && after != "" {
				after = ""
				continue
			}
			log.Warn().Err(err).Msg("waiting for messages failed; retrying")
			pause(ctx)
			continue
		}
		var msgs []json.RawMessage
		if err := json.Unmarshal(out, &msgs); err != nil {
			log.Error().Err(err).Msg("bad wait result; retrying")
			pause(ctx)
			continue
		}
		for _, m := range msgs {
			var id struct{ ID string }
			if json.Unmarshal(m, &id) == nil && id.ID != "" {
				after = id.ID
			}
		}
		if !each(msgs) {
			return
		}
	}
}

// pause waits a second before a retry, or until ctx ends (the loop then
// stops).
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
