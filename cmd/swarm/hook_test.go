package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
)

// TestHookSilentInWake: under SWARM_WAKE=1 (a woken session) the hook
// prints nothing and exits 0, whatever the home: it neither shows nor
// marks read what the session reads through its tools.
func TestHookSilentInWake(t *testing.T) {
	t.Setenv("SWARM_WAKE", "1")
	for _, which := range []string{"session-start", "user-prompt-submit"} {
		var out, errb bytes.Buffer
		code := run([]string{"--home", filepath.Join(t.TempDir(), "nowhere"), "hook", which}, strings.NewReader(`{"prompt":"hi"}`), &out, &errb)
		if code != 0 || out.Len() != 0 || errb.Len() != 0 {
			t.Fatalf("hook %s under SWARM_WAKE=1: exit %d, stdout %q, stderr %q", which, code, out.String(), errb.String())
		}
	}
}

// TestHookContextClipsAndCounts: a 60 KiB unread message cannot hide the
// others: the urgent one comes first, the big one is clipped (its head
// shown, with how to read the rest, and it stays unread), and the count
// of what is not shown is given.
func TestHookContextClipsAndCounts(t *testing.T) {
	msg := func(id, prio, body string) node.InboxMessage {
		return node.InboxMessage{ID: id, Swarm: "team", From: "b.test", Priority: prio, Body: body, Direct: true}
	}
	big := "HEAD-OF-BIG " + strings.Repeat("x", 60<<10) + " TAIL-OF-BIG"
	msgs := []node.InboxMessage{msg("m-big", "", big), msg("m-1", "", "first small"), msg("m-urgent", "urgent", "server down, help")}
	for i := range 30 {
		msgs = append(msgs, msg(fmt.Sprintf("m-n%02d", i), "low", fmt.Sprintf("chatter %d", i)))
	}
	text, shown := hookContext(msgs, false)
	if len(text) > hookMaxChars {
		t.Fatalf("hook context is %d characters, over the %d budget", len(text), hookMaxChars)
	}
	iu, ib, i1 := strings.Index(text, "server down, help"), strings.Index(text, "HEAD-OF-BIG"), strings.Index(text, "first small")
	if iu < 0 || ib < 0 || i1 < 0 {
		t.Fatalf("urgent %d, big %d, first %d: want all shown:\n%s", iu, ib, i1, text)
	}
	if !(iu < ib && ib < i1) {
		t.Errorf("order: urgent at %d, big at %d, first at %d; want urgent first, then by arrival", iu, ib, i1)
	}
	if strings.Contains(text, "TAIL-OF-BIG") {
		t.Error("the big message was not clipped")
	}
	for _, want := range []string{"clipped", `"m-big"`, "swarm_inbox", "stays unread"} {
		if !strings.Contains(text, want) {
			t.Errorf("the clip note lacks %q:\n%s", want, text)
		}
	}
	// At most 20 listed (as many as the budget holds): the big one
	// clipped, the rest shown whole; the others counted.
	if len(shown) < 10 || len(shown) > hookMaxMessages-1 || shown[0] != "m-urgent" || contains(shown, "m-big") {
		t.Errorf("marked read %v: want 10 to 19, urgent first, never the clipped one", shown)
	}
	rest := len(msgs) - len(shown) - 1
	if !strings.Contains(text, fmt.Sprintf("(%d more unread not shown here", rest)) {
		t.Errorf("the count of the rest (%d) is missing or wrong:\n%s", rest, text[max(0, len(text)-400):])
	}
	for _, id := range shown {
		if !strings.Contains(text, fmt.Sprintf("id=%q", id)) {
			t.Errorf("%s marked read but not shown", id)
		}
	}

	// More unread than the inbox call returned: "at least".
	if text, _ := hookContext(msgs, true); !strings.Contains(text, fmt.Sprintf("(at least %d more unread", rest)) {
		t.Errorf("more: %s", text[max(0, len(text)-400):])
	}
	// Everything fits: no count line.
	if text, shown := hookContext(msgs[1:3], false); strings.Contains(text, "more unread") || len(shown) != 2 {
		t.Errorf("two small messages: %v\n%s", shown, text)
	}
	if text, shown := hookContext(nil, false); text != "" || shown != nil {
		t.Errorf("nothing unread: %q %v", text, shown)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
