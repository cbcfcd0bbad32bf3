package node

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestCutHex(t *testing.T) {
	id := "0190f3a2-1b2c-7d4e-8f00-123456789abc"
	for _, tc := range []struct {
		h    int
		want string
	}{
		{8, "0190f3a2"},
		{9, "0190f3a2-1"},
		{12, "0190f3a2-1b2c"},
		{13, "0190f3a2-1b2c-7"},
		{32, id},
	} {
		if got := cutHex(id, tc.h); got != tc.want {
			t.Errorf("cutHex(%d) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

// The inbox shows each message by the shortest start of its ID that names
// it alone; read, delete, wait --after, delivery and reply-to take such a
// start, and say so clearly when one is too short, unknown or ambiguous.
func TestMessageIDPrefixes(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	ctx := context.Background()
	var sent []SendResult
	for _, body := range []string{"one", "two", "three"} {
		sent = append(sent, must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: body, Wait: 10 * time.Second})))
	}
	msgs := must[[]InboxMessage](t)(b.Inbox(InboxArgs{}))
	if len(msgs) != 3 {
		t.Fatalf("b holds %d messages", len(msgs))
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.ID, m.ShortID) || hexDigits(m.ShortID) < minPrefix || len(m.ShortID) >= len(m.ID) {
			t.Fatalf("short ID %q of %s", m.ShortID, m.ID)
		}
	}
	// UUIDv7s of one minute share their first 8 digits.
	common := cutHex(msgs[0].ID, minPrefix)

	for _, tc := range []struct {
		name string
		ref  string
		want string // an error, or "" for msgs[0]
	}{
		{"short ID", msgs[0].ShortID, ""},
		{"upper case", strings.ToUpper(msgs[0].ShortID), ""},
		{"whole ID", msgs[0].ID, ""},
		{"ambiguous", common, "ambiguous: it starts " + msgs[0].ID},
		{"too short", cutHex(msgs[0].ID, 7), "invalid id"},
		{"not hex", "zzzzzzzzz", "invalid id"},
		{"path", "../../data", "invalid id"},
		{"unknown", "ffffffff", "no message ffffffff in the inbox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := b.Read([]string{tc.ref}, false, "")
			switch {
			case tc.want == "" && (err != nil || c != 1):
				t.Fatalf("read %q: %d, %v", tc.ref, c, err)
			case tc.want != "" && (err == nil || !IsUser(err) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("read %q: %v, want an error saying %q", tc.ref, err, tc.want)
			}
		})
	}
	if got := must[[]InboxMessage](t)(b.Inbox(InboxArgs{Unread: true})); len(got) != 2 || got[0].ID != msgs[1].ID {
		t.Fatalf("after reading the first by its short ID, unread: %+v", got)
	}

	// wait --after takes a short ID too.
	after := must[[]InboxMessage](t)(b.Wait(ctx, "", time.Second, msgs[1].ShortID))
	if len(after) != 1 || after[0].ID != msgs[2].ID {
		t.Fatalf("wait after %s: %+v", msgs[1].ShortID, after)
	}

	// delivery looks among the messages sent, reply-to in both.
	ds := must[[]Delivery](t)(a.Deliveries(cutHex(sent[2].ID, 31)))
	if len(ds) != 1 || ds[0].Status != Delivered {
		t.Fatalf("delivery by prefix: %+v", ds)
	}
	if _, err := a.Deliveries("ffffffff"); !IsUser(err) || !strings.Contains(err.Error(), "no message ffffffff was sent by this node") {
		t.Fatalf("delivery of an unknown prefix: %v", err)
	}
	must[SendResult](t)(b.Send(ctx, SendArgs{Swarm: "team", Body: "re: one", ReplyTo: msgs[0].ShortID, Wait: 10 * time.Second}))
	got := bodies(t, a)["re: one"]
	if got.ReplyTo != msgs[0].ID {
		t.Fatalf("the reply names %q, want the whole ID %s", got.ReplyTo, msgs[0].ID)
	}
	if _, err := b.Send(ctx, SendArgs{Swarm: "team", Body: "x", ReplyTo: common}); err == nil || !strings.Contains(err.Error(), "reply_to: message id prefix") {
		t.Fatalf("reply to an ambiguous prefix: %v", err)
	}

	// Delete by short ID.
	if c := must[int](t)(b.Delete(DeleteArgs{IDs: []string{msgs[2].ShortID}})); c != 1 {
		t.Fatalf("deleted %d", c)
	}
}

// A short thread name goes out and comes back as sent; a bad one is
// refused on send, naming the problem.
func TestThreadNames(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	ctx := context.Background()
	must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: "in a thread", Thread: "design", Wait: 10 * time.Second}))
	if got := bodies(t, b)["in a thread"]; got.Thread != "design" {
		t.Fatalf("thread %q, want design", got.Thread)
	}
	for _, bad := range []string{"Design", "a b", "a/b", "-x", strings.Repeat("t", 65), "x\u200by"} {
		_, err := a.Send(ctx, SendArgs{Swarm: "team", Body: "x", Thread: bad})
		if !IsUser(err) || !strings.Contains(err.Error(), "invalid thread") {
			t.Errorf("thread %q: %v", bad, err)
		}
	}
}

// A port taken: the error says so once, and says where it is configured.
func TestListenErrorSaysItOnce(t *testing.T) {
	a := scNode(t, "a.test")
	home := scHome(t, "b.test")
	cfg := must[*Config](t)(LoadConfig(home))
	cfg.Listen = a.Addr()
	must0(t, SaveConfig(home, cfg))
	_, err := Open(home, Options{Serve: true, Log: zerolog.Nop()})
	if err == nil {
		t.Fatal("a second node bound a taken port")
	}
	msg := err.Error()
	if !errors.Is(err, syscall.EADDRINUSE) || strings.Count(msg, "listen udp") != 1 || strings.Count(msg, a.Addr()) != 1 || !strings.Contains(msg, "config.json") {
		t.Fatalf("error: %s", msg)
	}
}
