package github

import (
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// A member names its token's user as a swarm writer only of the swarm's
// linked repository: a writer's events are not relayed, so a writer
// named for any repository would silence that GitHub user there.
func TestWriterOnlyOfTheLinkedRepo(t *testing.T) {
	a, b := scOpen(t, scHome(t, "a.test")), scOpen(t, scHome(t, "b.test"))
	scSwarm(t, a, b)
	must[node.SwarmInfo](t)(a.LinkRepo("team", "acme/board"))
	e := ghOf(t, a)
	s := must[node.SwarmInfo](t)(a.LiveSwarm("team"))
	now := time.Now()
	for _, repo := range []string{"acme/board", "other/repo"} {
		m := &wire.Message{From: "b.test", Type: wire.TypeNotification, Body: "claimed",
			Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(),
			Refs: []wire.Ref{{Kind: "url", Repo: repo, URL: "https://github.com/octo", Action: writerAction, Login: "octo"}}}
		e.heard(node.Event{Kind: node.EventMessage, Swarm: s.ID, Message: m, SenderKey: b.Key()})
	}
	if !e.isWriter("acme/board", "octo") {
		t.Fatal("the writer a member named for the linked repository was not learned")
	}
	if e.isWriter("other/repo", "octo") {
		t.Fatal("a writer named for a repository the swarm does not link was learned")
	}
}
