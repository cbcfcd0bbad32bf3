package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
)

// TestArchiveKeepsMessagesAndFreesQuota: archiving marks a message read,
// so its bytes no longer count against the sender's quota; the prune of
// old read messages keeps archived ones; unarchived, they are pruned like
// any read message.
func TestArchiveKeepsMessagesAndFreesQuota(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	a := scNode(t, "a.test")
	b, err := Open(scHome(t, "b.test"), Options{Serve: true, Log: zerolog.Nop(), Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	scSwarm(t, a, b)
	ctx := context.Background()
	for i := range 3 {
		must[SendResult](t)(a.Send(ctx, SendArgs{Swarm: "team", Body: fmt.Sprintf("m%d", i), Wait: 5 * time.Second}))
	}
	ms := bodies(t, b)
	swarmID := ms["m0"].SwarmID
	unread := func() int64 {
		var v int64
		err := b.st.View(func(tx *store.Tx) error {
			err := tx.Get(quotaKey(swarmID, a.key()), &v)
			if err == store.ErrNotFound {
				return nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := unread()
	if before <= 0 {
		t.Fatalf("unread bytes of a's messages: %d", before)
	}

	cases := []struct {
		name string
		args ArchiveArgs
		want int
	}{
		{"archive two", ArchiveArgs{IDs: []string{ms["m0"].ID, ms["m1"].ID}}, 2},
		{"again: nothing changes", ArchiveArgs{IDs: []string{ms["m0"].ID}}, 0},
		{"unarchive one", ArchiveArgs{IDs: []string{ms["m1"].ID}, Undo: true}, 1},
		{"unarchive an unarchived one", ArchiveArgs{IDs: []string{ms["m2"].ID}, Undo: true}, 0},
	}
	for _, c := range cases {
		if got := must[int](t)(b.Archive(c.args)); got != c.want {
			t.Fatalf("%s: changed %d, want %d", c.name, got, c.want)
		}
	}
	if after := unread(); after >= before || after <= 0 {
		t.Fatalf("unread bytes %d after archiving 2 of 3 (before %d): want less, but more than 0", after, before)
	}
	count := must[InboxCount](t)(b.Count("", false))
	if count.Archived != 1 || count.Read != 1 || count.Unread != 1 {
		t.Fatalf("count %+v: want 1 archived, 1 read, 1 unread", count)
	}

	clock.Store(now.Add(31 * 24 * time.Hour).UnixNano())
	if n := must[int](t)(b.pruneInbox(24 * time.Hour)); n != 1 {
		t.Fatalf("pruned %d, want only the unarchived read one", n)
	}
	all := must[[]InboxMessage](t)(b.Inbox(InboxArgs{Status: StatusAll, IncludeMuted: true}))
	left := map[string]bool{}
	for _, m := range fromPeers(all) {
		left[m.Body] = m.Archived
	}
	if len(left) != 2 || !left["m0"] || left["m2"] {
		t.Fatalf("after the prune: %v, want m0 archived and m2 unread", left)
	}
}
