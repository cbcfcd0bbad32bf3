package github

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

// TestSendDurableOp: `send --durable --issue N` through the one table
// answers as before the move (the send's fields, then "durable"), renders
// as a task change, and the flags' mistakes are named; a send without
// them (or with durable false) is a plain send.
func TestSendDurableOp(t *testing.T) {
	fake := fakegithub.New(ghToken)
	defer fake.Close()
	fake.AddRepo("acme/app")
	fake.CreateIssue("acme/app", "octo", "a task", "", "status:ready")
	t.Setenv("GITHUB_TOKEN", ghToken)
	a, b := scOpen(t, ghHome(t, "a.test", fake, "")), scOpen(t, ghHome(t, "b.test", fake, ""))
	scSwarm(t, a, b)
	must[node.SwarmInfo](t)(ghOf(t, a).Link("team", "acme/app"))
	ctx := context.Background()

	res, err := ops.Call(ctx, a, "send", map[string]any{"swarm": "team", "body": "kept on GitHub", "durable": true, "issue": 1})
	if err != nil {
		t.Fatal(err)
	}
	out := must[[]byte](t)(json.Marshal(res))
	var keys []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
	if strings.Join(keys, ",") != "id,swarm,seq,recipients,durable" {
		t.Fatalf("durable send answers %s", out)
	}
	text := must[string](t)(ops.Find("send").Text(out))
	if !strings.HasPrefix(text, "commented acme/app#1 http") || !strings.HasSuffix(text, "; the swarm is notified") {
		t.Fatalf("durable send text %q", text)
	}
	waitNote(t, b, "kept on GitHub", "commented")

	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"swarm": "team", "body": "x", "issue": 1}, "--issue goes with --durable"},
		{map[string]any{"swarm": "team", "body": "x", "durable": false, "issue": 1}, "--issue goes with --durable"},
		{map[string]any{"swarm": "team", "body": "x", "durable": true}, "needs the issue"},
		{map[string]any{"swarm": "team", "body": "x", "durable": true, "issue": 1, "to": "b.test"}, "--to, --thread and --reply-to do not apply"},
	} {
		if _, err := ops.Call(ctx, a, "send", c.args); err == nil || !node.IsUser(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("send %v: %v; want %q", c.args, err, c.want)
		}
	}
	for _, args := range []map[string]any{{"swarm": "team", "body": "plain"}, {"swarm": "team", "body": "plain too", "durable": false}} {
		res := must[any](t)(ops.Call(ctx, a, "send", args))
		sr, ok := res.(node.SendResult)
		if !ok || sr.ID == "" || len(sr.Recipients) != 1 {
			t.Fatalf("plain send %v: %#v", args, res)
		}
		text := must[string](t)(ops.Find("send").Text(must[[]byte](t)(json.Marshal(sr))))
		if !strings.HasPrefix(text, "sent "+sr.ID) {
			t.Fatalf("plain send text %q", text)
		}
	}
}

// TestHomeNeeds: what the CLI reads of a home's "github" section without
// a node: the daemon keeps the token, gh's settings and the named webhook
// secret; a proxy passes the webhook on only when a secret is named and
// sync is not off. The login is the agent's alias.
func TestHomeNeeds(t *testing.T) {
	for _, c := range []struct {
		section string
		env     string
		paths   string
	}{
		{``, "GITHUB_TOKEN GH_ GITHUB_API_URL GITHUB_ENTERPRISE_TOKEN SWARM_GITHUB_WEBHOOK_SECRET", ""},
		{`{"webhook_secret_env":"MY_SECRET"}`, "GITHUB_TOKEN GH_ GITHUB_API_URL GITHUB_ENTERPRISE_TOKEN MY_SECRET", webhookPath},
		{`{"webhook_secret_env":"MY_SECRET","sync":"off"}`, "GITHUB_TOKEN GH_ GITHUB_API_URL GITHUB_ENTERPRISE_TOKEN MY_SECRET", ""},
		{`{"sync":"on"}`, "GITHUB_TOKEN GH_ GITHUB_API_URL GITHUB_ENTERPRISE_TOKEN SWARM_GITHUB_WEBHOOK_SECRET", ""},
	} {
		cfg := &node.Config{}
		if c.section != "" {
			cfg.Ext = map[string]json.RawMessage{Name: json.RawMessage(c.section)}
		}
		if got := strings.Join(daemonEnv(cfg), " "); got != c.env {
			t.Errorf("%s: daemon env %q, want %q", c.section, got, c.env)
		}
		if got := strings.Join(node.PublicPaths(cfg), " "); got != c.paths {
			t.Errorf("%s: public paths %q, want %q", c.section, got, c.paths)
		}
	}
	fake := fakegithub.New(ghToken)
	defer fake.Close()
	n := scOpen(t, ghHome(t, "c.test", fake, "octo-c"))
	if got := n.Aliases(); len(got) != 1 || got[0] != "octo-c" {
		t.Fatalf("aliases %v, want the login", got)
	}

	// A section the layer cannot read stops the node, naming it.
	home := scHome(t, "d.test")
	cfg := must[*node.Config](t)(node.LoadConfig(home))
	cfg.Ext = map[string]json.RawMessage{Name: json.RawMessage(`{"poll_every":5}`)}
	must0(t, node.SaveConfig(home, cfg))
	if _, err := node.Open(home, node.Options{Log: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), `"github"`) {
		t.Fatalf("a bad github section: %v", err)
	}
}
