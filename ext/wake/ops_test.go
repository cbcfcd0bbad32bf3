package wake

import (
	"strings"
	"testing"
)

// TestWakeHistoryText: each wake shows its real outcome, as the session
// reported it: exit code, the error in claude's words, refused tools and
// the result, folded onto one line and clipped; never a bare subtype.
func TestWakeHistoryText(t *testing.T) {
	base := Record{ID: "w1", Started: "2026-12-02T00:07:03.123456789Z", Group: "dev-team", Trigger: "direct", Messages: []string{"m1"}, DurationMs: 3200}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	for _, tc := range []struct {
		name   string
		rec    Record
		want   []string
		absent []string
	}{
		{"ok", with(func(r *Record) {
			r.Status, r.SessionID, r.CostUSD, r.Result = "ok", "sess-1", 0.0123, "Answered a.test:\n\nreviewing PR 7"
		}), []string{"2026-12-02T00:07:03Z  ok       dev-team             1 msg, exit 0, 3.2s, $0.0123, session sess-1", "\n    result: Answered a.test: reviewing PR 7"},
			[]string{"error:", ".123"}},
		{"api error", with(func(r *Record) {
			r.Status, r.Exit = "failed", 1
			r.Error = "the session ended with an error (api_error, API status 401): Invalid API key · Fix external API key"
			r.Result = "Invalid API key · Fix external API key"
		}), []string{"failed", "exit 1", "\n    error: the session ended with an error (api_error, API status 401): Invalid API key · Fix external API key"},
			[]string{"result:", "error: success"}},
		{"denied", with(func(r *Record) {
			r.Status, r.Result, r.Denied = "ok", "could not", []string{"Read", "mcp__swarm__swarm_leave"}
		}), []string{"\n    denied: Read, mcp__swarm__swarm_leave (allow more with swarm wake set --allowed-tools)", "result: could not"}, nil},
		{"skipped", with(func(r *Record) {
			r.Status, r.Error = "skipped", "daily wake budget (20) spent"
		}), []string{"skipped  dev-team             1 msg\n    error: daily wake budget (20) spent"}, []string{"exit"}},
		{"long result clipped", with(func(r *Record) {
			r.Status, r.Result = "ok", strings.Repeat("é", 400)
		}), []string{"result: " + strings.Repeat("é", 150) + "…"}, []string{strings.Repeat("é", 151)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := textWakeHistory([]Record{tc.rec})
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("has %q:\n%s", a, got)
				}
			}
		})
	}
	if got := textWakeHistory(nil); got != "no wakes yet" {
		t.Errorf("empty history: %q", got)
	}
}

// TestWakeRulesTextClaude: `wake rules` names the claude a wake would run,
// or warns that there is none.
func TestWakeRulesTextClaude(t *testing.T) {
	found := textWake(Info{Config: Config{Enabled: true}, Daemon: true, ClaudePath: "/usr/local/bin/claude"})
	if !strings.Contains(found, "session: claude (/usr/local/bin/claude) in") || strings.Contains(found, "warning") {
		t.Errorf("found:\n%s", found)
	}
	missing := textWake(Info{Config: Config{Enabled: true}, Daemon: true, ClaudeError: `claude command "claude" is not on PATH`})
	if !strings.Contains(missing, "\nwarning: claude command \"claude\" is not on PATH") {
		t.Errorf("missing:\n%s", missing)
	}
}
