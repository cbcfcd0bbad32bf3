package github

import (
	"slices"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// Every member records what a relay announced from its reference alone:
// the keys it reads back are those the master marked.
func TestRelayKeysRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 7, 0, time.UTC)
	issueURL := "https://github.com/acme/app/issues/3"
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{"opened", Event{ID: "issue:3", Repo: "acme/app", Issue: 3, Action: "opened", Actor: "carol", URL: issueURL, At: at}},
		{"commented", Event{ID: "comment:77", Repo: "acme/app", Issue: 3, Action: "commented", Actor: "carol", URL: issueURL + "#issuecomment-77", At: at}},
		{"labeled by the poller", Event{ID: "event:9", Repo: "acme/app", Issue: 3, Action: "labeled", Actor: "carol", Label: "Bug fix/UI", URL: issueURL, At: at}},
		{"assigned by a webhook", Event{ID: "hook:ab12", Repo: "acme/app", Issue: 3, Action: "assigned", Actor: "carol", Assignee: "dave", URL: issueURL, At: at}},
		{"closed pull request", Event{ID: "hook:cd34", Repo: "acme/app", Issue: 4, PR: true, Action: "closed", Actor: "carol", URL: "https://github.com/acme/app/pull/4", At: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := relayRef(tc.ev)
			if wantKind := map[bool]string{true: "pr", false: "issue"}[tc.ev.PR]; ref.Kind != wantKind {
				t.Fatalf("kind %q, want %q", ref.Kind, wantKind)
			}
			_, mark := tc.ev.keys()
			got := relayKeys(ref)
			if len(got) != 1 || !slices.Contains(mark, got[0]) {
				t.Fatalf("relay %+v reads back as %v; the master marked %v", ref, got, mark)
			}
			// What a member records makes the other source's report of
			// the same event a repeat.
			check, _ := tc.ev.keys()
			if !slices.Contains(check, got[0]) {
				t.Fatalf("key %s is not among those checked: %v", got[0], check)
			}
		})
	}
}

// Only the activity an agent needs becomes an event; swarm writes are
// known by their marker; pull requests are told apart.
func TestEventMapping(t *testing.T) {
	p := &Poller{repo: "acme/app"}
	for _, kind := range []string{"mentioned", "subscribed", "unlabeled", "unassigned", "renamed", "referenced"} {
		if _, ok := p.issueEvent(&gh.IssueEvent{Event: gh.String(kind), Issue: &gh.Issue{Number: gh.Int(1)}}); ok {
			t.Errorf("a %s event became a notification", kind)
		}
	}
	for _, kind := range []string{"labeled", "assigned", "closed", "reopened"} {
		if _, ok := p.issueEvent(&gh.IssueEvent{Event: gh.String(kind), Issue: &gh.Issue{Number: gh.Int(1)}}); !ok {
			t.Errorf("a %s event was dropped", kind)
		}
	}
	pr, _ := p.issueEvent(&gh.IssueEvent{Event: gh.String("closed"), Issue: &gh.Issue{Number: gh.Int(2),
		PullRequestLinks: &gh.PullRequestLinks{URL: gh.String("https://api.github.com/repos/acme/app/pulls/2")}}})
	if !pr.PR {
		t.Error("a pull request's event is not marked as a PR")
	}
	cm := p.commented(&gh.IssueComment{ID: gh.Int64(5), Body: gh.String("done\n\n" + Marker("0000000000000007-abcd1234")),
		IssueURL: gh.String("https://api.github.com/repos/acme/app/issues/2"), HTMLURL: gh.String("https://github.com/acme/app/pull/2#issuecomment-5")})
	if cm.WriteID != "0000000000000007-abcd1234" || !cm.PR || cm.Body != "done" {
		t.Fatalf("comment event %+v", cm)
	}
}

// Labels match whatever their case, as on GitHub.
func TestTaskStatusCaseInsensitive(t *testing.T) {
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"Status:Ready"}, "ready"},
		{[]string{"phase:1", "STATUS:IN-PROGRESS"}, "in-progress"},
		{[]string{"statusready"}, ""},
	} {
		is := &gh.Issue{Number: gh.Int(1), State: gh.String("open")}
		for _, l := range tc.labels {
			is.Labels = append(is.Labels, &gh.Label{Name: gh.String(l)})
		}
		if got := toTask(is).Status; got != tc.want {
			t.Errorf("labels %v: status %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// Webhooks map the same kinds: a pull request's opening is a PR's; an
// unlabeling is dropped; a comment carries its write marker.
func TestWebhookMapping(t *testing.T) {
	repo := `"repository":{"full_name":"Acme/App"},"sender":{"login":"carol"}`
	for _, tc := range []struct {
		kind, payload string
		ok, pr        bool
		action, write string
	}{
		{"pull_request", `{"action":"opened","number":4,"pull_request":{"number":4,"title":"Fix","body":"b"},` + repo + `}`, true, true, "opened", ""},
		{"pull_request", `{"action":"synchronize","number":4,"pull_request":{"number":4},` + repo + `}`, false, false, "", ""},
		{"issues", `{"action":"unlabeled","issue":{"number":3},"label":{"name":"bug"},` + repo + `}`, false, false, "", ""},
		{"issues", `{"action":"labeled","issue":{"number":3},"label":{"name":"bug"},` + repo + `}`, true, false, "labeled", ""},
		{"issue_comment", `{"action":"created","issue":{"number":3},"comment":{"id":9,"body":"x <!-- swarm-write:00ab-ff -->"},` + repo + `}`, true, false, "commented", "00ab-ff"},
	} {
		ev, ok, err := toEvent(tc.kind, "h", []byte(tc.payload))
		if err != nil || ok != tc.ok || (ok && (ev.PR != tc.pr || ev.Action != tc.action || ev.WriteID != tc.write)) {
			t.Errorf("%s %s: %+v ok=%v err=%v", tc.kind, tc.payload, ev, ok, err)
		}
	}
}
