package github

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/node"
)

// Issue #15, item 6, on a real node: a write GitHub refuses for good is
// an error of the right kind at once (not "queued durably…" and an hour
// of retries), status says so, and the next write goes out.
func TestNodeWriteRefusedAtOnce(t *testing.T) {
	const roToken = "ghp_readONLY0123456789abcdefABCDEF0123"
	fake := fakegithub.New(ghToken)
	defer fake.Close()
	fake.AddRepo("acme/app")
	fake.AddReadOnlyToken(roToken, "viewer")
	fake.CreateIssue("acme/app", "carol", "one", "")
	fake.CreateIssue("acme/app", "carol", "two", "")
	t.Setenv("GITHUB_TOKEN", ghToken)
	n := scOpen(t, ghHome(t, "a.test", fake, ""))
	must[node.SwarmInfo](t)(n.Create(node.CreateArgs{Name: "team"}))
	e := ghOf(t, n)
	must[node.SwarmInfo](t)(e.Link("team", "acme/app"))
	ctx := context.Background()

	start := time.Now()
	_, err := e.TaskComment(WithToken(ctx, roToken), "team", 1, "from a read-only token")
	if err == nil || node.KindOf(err) != node.Refused || !strings.Contains(err.Error(), "Resource not accessible") {
		t.Fatalf("read-only write: %v (kind %q)", err, node.KindOf(err))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("the refusal took %v", el)
	}
	if strings.Contains(err.Error(), roToken) {
		t.Fatal("the token is in the error")
	}
	ok := must[TaskResult](t)(e.TaskComment(ctx, "team", 2, "with the node's token"))
	if ok.Queued || len(fake.Comments("acme/app", 2)) != 1 {
		t.Fatalf("the next write: %+v", ok)
	}
	st := must[Status](t)(e.StatusOf(ctx))
	if st.Queue == nil || st.Queue.GivenUp != 1 || len(st.Queue.Failed) != 1 || st.Queue.Failed[0].Issue != 1 ||
		!strings.Contains(st.Queue.Failed[0].Error, "Resource not accessible") {
		t.Fatalf("status %+v", st.Queue)
	}
	if txt := textStatus(st); !strings.Contains(txt, "failed: comment acme/app#1: ") {
		t.Fatalf("status text:\n%s", txt)
	}

	fake.DisableIssues("acme/app")
	_, err = e.TaskCreate(ctx, TaskCreateArgs{Swarm: "team", TaskSpec: TaskSpec{Title: "nowhere"}})
	if err == nil || node.KindOf(err) != node.Invalid || !strings.Contains(err.Error(), "410") {
		t.Fatalf("issues disabled: %v (kind %q)", err, node.KindOf(err))
	}
}
