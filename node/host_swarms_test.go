package node

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

func must0(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostSwarms: an extension sees the swarms with their link and the
// master role, a member cannot link a repository, the master's link
// reaches the member and is published as EventSwarms, and a bad
// repository name is refused before anything is written.
func TestHostSwarms(t *testing.T) {
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)
	if _, err := b.LinkRepo("team", "acme/app"); err == nil || !IsUser(err) || !strings.Contains(err.Error(), "only the master") {
		t.Fatalf("a member linked a repo: %v", err)
	}
	head := must[SwarmInfo](t)(a.LiveSwarm("team")).Head
	for _, bad := range []string{"not-a-repo", "a/b/c", "a b/c"} {
		if _, err := a.LinkRepo("team", bad); err == nil || !IsUser(err) || !strings.Contains(err.Error(), "owner/name") {
			t.Fatalf("link %q: %v", bad, err)
		}
	}
	if got := must[SwarmInfo](t)(a.LiveSwarm("team")).Head; got != head {
		t.Fatalf("head %d after refused links, want %d: nothing is written", got, head)
	}
	info := must[SwarmInfo](t)(a.LinkRepo("team", "acme/app"))
	if info.Repo != "acme/app" || !info.IsMaster {
		t.Fatalf("link: %+v", info)
	}
	scWait(t, "b learns the link", func() bool {
		for _, s := range b.Swarms() {
			if s.Name == "team" {
				return s.Repo == "acme/app" && !s.IsMaster && s.Master == "a.test"
			}
		}
		return false
	})
	if _, err := a.LiveSwarm("nope"); err == nil || KindOf(err) != NotFound {
		t.Fatalf("unknown swarm: %v", err)
	}
	must[SwarmInfo](t)(b.Leave("team"))
	if _, err := b.LiveSwarm("team"); err == nil || !strings.Contains(err.Error(), "left") {
		t.Fatalf("a swarm left: %v", err)
	}
	if ss := b.Swarms(); len(ss) != 1 || !ss[0].Left {
		t.Fatalf("b's swarms after leaving: %+v", ss)
	}
}

// TestRelayNote: Frame adds a registered note to a notification from the
// swarm's master whose body starts with the relay's prefix, and to nothing
// else (a member's look-alike does not borrow it).
func TestRelayNote(t *testing.T) {
	RegisterRelay("Relayed from the test service", "It relays test activity.")
	for _, c := range []struct {
		typ, body string
		master    bool
		want      bool
	}{
		{wire.TypeNotification, "Relayed from the test service: x said y", true, true},
		{wire.TypeMessage, "Relayed from the test service: x said y", true, false},
		{wire.TypeNotification, "a note that quotes Relayed from the test service", true, false},
		{wire.TypeNotification, "Relayed from the test service: x said y", false, false},
	} {
		f := Frame(InboxMessage{ID: "m1", Swarm: "team", From: "b.test", Type: c.typ, Body: c.body, Sender: Sender{Master: c.master}})
		if got := strings.Contains(f, "It relays test activity."); got != c.want {
			t.Errorf("%s %q: note %v, want %v:\n%s", c.typ, c.body, got, c.want, f)
		}
	}
}

// TestAllowedMethodExtRoutes: a wrong method on an extension's endpoint
// gets 405 naming the right one, as on the core's own.
func TestAllowedMethodExtRoutes(t *testing.T) {
	ext := map[string]http.Handler{"POST /ext/hook": http.NotFoundHandler()}
	for path, want := range map[string]string{
		"/ext/hook": "POST", "/swarm/v1/ping": "POST", "/.well-known/swarm-agent": "GET", "/ext/other": "", "/ext/hook/x": "",
	} {
		if got := allowedMethod(path, ext); got != want {
			t.Errorf("allowedMethod(%s) = %q, want %q", path, got, want)
		}
	}
}
