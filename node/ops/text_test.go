package ops

import (
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
)

func TestTextInbox(t *testing.T) {
	peer := node.InboxMessage{ID: "0190f3a2-1b2c-7d4e-8f00-123456789abc", ShortID: "0190f3a2-1b2c", Swarm: "team",
		From: "b.test", Sender: node.Sender{Name: "b.test", Fingerprint: "abcd-efgh", Identity: "claimed"}, To: "*",
		Type: "message", Received: "2025-06-01T12:00:00.123Z", Created: "2025-06-01T12:00:00.100Z", Body: "hello"}
	with := func(f func(*node.InboxMessage)) node.InboxMessage { m := peer; f(&m); return m }
	for _, tc := range []struct {
		name string
		m    node.InboxMessage
		want string
	}{
		{"plain, unread", peer,
			`* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh): "hello"`},
		{"read", with(func(m *node.InboxMessage) { m.Read = true }),
			`  0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh): "hello"`},
		{"direct, urgent, notification, thread, reply", with(func(m *node.InboxMessage) {
			m.Direct, m.Priority, m.Type, m.Thread, m.ReplyTo = true, "urgent", "notification", "design", "0190f3a2-0000-7000-8000-000000000000"
		}), `* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh) direct urgent notification thread "design" reply to "0190f3a2-0000-7000-8000-000000000000": "hello"`},
		{"normal priority is not shown", with(func(m *node.InboxMessage) { m.Priority = "normal" }),
			`* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh): "hello"`},
		{"a notice from the node", with(func(m *node.InboxMessage) {
			m.Local, m.Direct, m.Type, m.Event, m.Priority, m.Body = true, true, "system", "kicked", "high", `This node was kicked from swarm "team"`
			m.Sender = node.Sender{Name: "a.test", Fingerprint: "self-self", Identity: "self"}
		}), `* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] this node (notice, not from a peer) high system/kicked: "This node was kicked from swarm \"team\""`},
		{"clash, gap, skewed clock", with(func(m *node.InboxMessage) {
			m.Sender.Clash, m.Gap, m.Created = true, 2, "2025-06-01T11:00:00.5Z"
		}), `* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh) [name shared by another key!] (2 earlier message(s) from this sender missing) sender's clock says 2025-06-01T11:00:00Z: "hello"`},
		{"no short ID: the whole one", with(func(m *node.InboxMessage) { m.ShortID = "" }),
			`* 0190f3a2-1b2c-7d4e-8f00-123456789abc 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh): "hello"`},
		{"a body cannot break the line", with(func(m *node.InboxMessage) { m.Body = "one\n* fake line" }),
			`* 0190f3a2-1b2c 2025-06-01T12:00:00Z [team] b.test (claimed, key abcd-efgh): "one\n* fake line"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := textInbox([]node.InboxMessage{tc.m}); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if got := textInbox(nil); got != "no messages" {
		t.Fatalf("empty inbox: %q", got)
	}
}

// Human text carries no epoch numbers and no fractions of a second.
func TestHumanTime(t *testing.T) {
	for in, want := range map[string]string{
		"2025-06-01T12:00:00.123456789Z": "2025-06-01T12:00:00Z",
		"2025-06-01T14:00:00.5+02:00":    "2025-06-01T12:00:00Z",
		"2025-06-01T12:00:00Z":           "2025-06-01T12:00:00Z",
		"":                               "",
		"soon":                           "soon",
	} {
		if got := textTime(in); got != want {
			t.Errorf("textTime(%q) = %q, want %q", in, got, want)
		}
	}
	d := textDeliveries([]node.Delivery{{Peer: "b.test", Fingerprint: "abcd", Status: "delivered", Updated: 1748779200123}})
	if !strings.Contains(d, "delivered 2025-06-01T12:00:00Z") || strings.Contains(d, "1748779200") {
		t.Fatalf("delivery text: %q", d)
	}
}

func TestTextListLeft(t *testing.T) {
	got := textList([]node.SwarmInfo{{Name: "team", ID: "x", Members: 2, Master: "a.test", Left: true, Reason: "kick"}})
	if !strings.Contains(got, "you: former member (kick)") || strings.Contains(got, "you: master") {
		t.Fatalf("list of a swarm left: %q", got)
	}
}

// Argument errors name the command, the parameter and the value as the
// caller gave it, the same through every face.
func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		op   string
		raw  map[string]any
		want string
	}{
		{"invite", map[string]any{"ttl": "forever"}, `invite: ttl "forever": want a duration such as "90s" or "2h"`},
		{"invite", map[string]any{"uses": "many"}, `invite: uses "many": want a whole number`},
		{"invite", map[string]any{"uses": 1.5}, `invite: uses "1.5": want a whole number`},
		{"inbox", map[string]any{"unread": "perhaps"}, `inbox: unread "perhaps": want true or false`},
		{"send", map[string]any{"body": "x", "colour": "blue"}, `send: unknown argument colour`},
		{"inbox_delete", map[string]any{"ids": 7.0}, `inbox delete: ids "7": want a list of strings`},
	} {
		_, err := Find(tc.op).Validate(tc.raw)
		if err == nil || !node.IsUser(err) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.op, tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(tc.op, "_") && strings.Contains(err.Error(), tc.op) {
			t.Errorf("%s: the error names the operation by its internal name: %v", tc.op, err)
		}
	}
}
