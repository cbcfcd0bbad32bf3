package github

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	gh "github.com/google/go-github/v62/github"
)

func TestTaskLifecycle(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	ctx := context.Background()

	task, err := c.CreateTask(ctx, testRepo, TaskSpec{Title: "Build parser", Body: "details",
		Phase: "alpha", Complexity: "medium", Parallel: true})
	if err != nil {
		t.Fatal(err)
	}
	if task.Number != 1 || task.Status != "ready" || task.URL == "" {
		t.Fatalf("created %+v", task)
	}
	for _, l := range []string{LabelReady, "phase:alpha", "complexity:medium", LabelParallel} {
		if !slices.Contains(task.Labels, l) {
			t.Fatalf("label %s missing from %v", l, task.Labels)
		}
	}
	other, _ := c.CreateTask(ctx, testRepo, TaskSpec{Title: "Other"})

	steps := []struct {
		name    string
		do      func() (Ref, error)
		action  string
		status  string
		comment string // last comment expected, "" for none
	}{
		{"claim", func() (Ref, error) { return c.ClaimTask(ctx, testRepo, 1, "agent-a", "alice") }, ActionClaimed, "in-progress", "Claimed by agent-a"},
		{"block", func() (Ref, error) { return c.BlockTask(ctx, testRepo, 1, "waiting on API key") }, ActionBlocked, "blocked", "Blocked: waiting on API key"},
		{"unblock", func() (Ref, error) { return c.UnblockTask(ctx, testRepo, 1) }, ActionUnblocked, "ready", ""},
		{"comment", func() (Ref, error) { return c.Comment(ctx, testRepo, 1, "progress note") }, ActionCommented, "ready", "progress note"},
		{"close", func() (Ref, error) { return c.CloseTask(ctx, testRepo, 1, "#12") }, ActionCompleted, "closed", "Completed in #12"},
	}
	for _, s := range steps {
		ref, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if ref.Action != s.action || ref.Issue != 1 || ref.Repo != testRepo || ref.URL == "" {
			t.Fatalf("%s: ref %+v", s.name, ref)
		}
		got, err := c.GetTask(ctx, testRepo, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != s.status {
			t.Fatalf("%s: status %q, want %q (labels %v)", s.name, got.Status, s.status, got.Labels)
		}
		if n := countPrefix(got.Labels, statusPrefix); n > 1 {
			t.Fatalf("%s: %d status labels: %v", s.name, n, got.Labels)
		}
		if !slices.Contains(got.Labels, "phase:alpha") {
			t.Fatalf("%s: other labels lost: %v", s.name, got.Labels)
		}
		cms := f.Comments(testRepo, 1)
		if s.comment != "" && (len(cms) == 0 || cms[len(cms)-1].Body != s.comment) {
			t.Fatalf("%s: last comment %+v, want %q", s.name, cms, s.comment)
		}
		// The board view follows each change.
		list, err := c.ListTasks(ctx, testRepo, s.status)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list, func(x Task) bool { return x.Number == 1 }) {
			t.Fatalf("%s: task not listed as %s: %+v", s.name, s.status, list)
		}
	}
	if got, _ := c.GetTask(ctx, testRepo, 1); !slices.Equal(got.Assignees, []string{"alice"}) {
		t.Fatalf("assignees %v", got.Assignees)
	}
	if ready, _ := c.ListTasks(ctx, testRepo, "ready"); len(ready) != 1 || ready[0].Number != other.Number {
		t.Fatalf("ready list %+v", ready)
	}
}

func countPrefix(labels []string, p string) int {
	n := 0
	for _, l := range labels {
		if strings.HasPrefix(l, p) {
			n++
		}
	}
	return n
}

func TestCreateTaskValidation(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	for _, tc := range []struct {
		name string
		spec TaskSpec
		want string
	}{
		{"empty title", TaskSpec{Title: "  "}, "title is empty"},
		{"bad complexity", TaskSpec{Title: "x", Complexity: "huge"}, "complexity"},
		{"phase with comma", TaskSpec{Title: "x", Phase: "a,b"}, "phase"},
		{"long phase", TaskSpec{Title: "x", Phase: strings.Repeat("p", 60)}, "phase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Requests()
			_, err := c.CreateTask(context.Background(), testRepo, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if f.Requests() != before {
				t.Fatal("invalid task reached GitHub")
			}
		})
	}
}

func TestListTasksPagination(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	for i := 1; i <= 520; i++ {
		label := LabelReady
		if i%2 == 0 {
			label = LabelBlocked
		}
		f.CreateIssue(testRepo, "someone", "task", "", label)
	}
	ctx := context.Background()
	before := f.Requests()
	all, err := c.ListTasks(ctx, testRepo, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != maxListed || all[0].Number != 1 || all[maxListed-1].Number != maxListed {
		t.Fatalf("got %d tasks, first %d", len(all), all[0].Number)
	}
	if n := f.Requests() - before; n != 5 {
		t.Fatalf("%d requests for 500 tasks, want 5 pages of 100", n)
	}
	ready, err := c.ListTasks(ctx, testRepo, "ready")
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 260 || ready[259].Number != 519 {
		t.Fatalf("ready: %d, last %d", len(ready), ready[len(ready)-1].Number)
	}
	if _, err := c.ListTasks(ctx, testRepo, "bogus"); err == nil {
		t.Fatal("bogus status accepted")
	}
}

// The fake's Link headers are what go-github parses into page numbers.
func TestFakeLinkHeaders(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	for i := 0; i < 250; i++ {
		f.CreateIssue(testRepo, "u", "t", "")
	}
	for _, tc := range []struct{ page, next, prev, last int }{
		{1, 2, 0, 3}, {2, 3, 1, 3}, {3, 0, 2, 0},
	} {
		list, resp, err := c.GH().Issues.ListByRepo(context.Background(), "acme", "board",
			&gh.IssueListByRepoOptions{ListOptions: gh.ListOptions{Page: tc.page, PerPage: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.NextPage != tc.next || resp.PrevPage != tc.prev || resp.LastPage != tc.last {
			t.Fatalf("page %d: next %d prev %d last %d", tc.page, resp.NextPage, resp.PrevPage, resp.LastPage)
		}
		if want := min(100, 250-(tc.page-1)*100); len(list) != want {
			t.Fatalf("page %d: %d items", tc.page, len(list))
		}
	}
}

func TestAPIErrors(t *testing.T) {
	f := newFake(t)
	good := newClient(t, f, testToken)
	bad := newClient(t, f, "ghp_wrongTOKEN")
	ctx := context.Background()
	good.CreateTask(ctx, testRepo, TaskSpec{Title: "one"})

	_, err := bad.ListTasks(ctx, testRepo, "")
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "ghp_wrongTOKEN") {
		t.Fatalf("bad token: %v", err)
	}
	_, err = bad.CreateTask(ctx, testRepo, TaskSpec{Title: "x"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("bad token create: %v", err)
	}

	_, err = good.ListTasks(ctx, "acme/missing", "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "acme/missing") {
		t.Fatalf("missing repo: %v", err)
	}
	_, err = good.ClaimTask(ctx, testRepo, 99, "a", "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "#99") {
		t.Fatalf("missing issue: %v", err)
	}

	_, err = good.CreateTask(ctx, testRepo, TaskSpec{Title: strings.Repeat("t", 300)})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "maximum is 256") {
		t.Fatalf("422: %v", err)
	}

	f.FailNext(1, 502)
	_, err = good.GetTask(ctx, testRepo, 1)
	if !Transient(err) {
		t.Fatalf("502 not transient: %v", err)
	}
}

func TestRateLimitedError(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, testToken)
	f.SetRemaining(0, 0)
	_, err := c.GetTask(context.Background(), testRepo, 1)
	var rl *RateLimited
	if !errors.As(err, &rl) || rl.Secondary || rl.Until.IsZero() {
		t.Fatalf("primary: %v", err)
	}
	if c.Rate().Remaining != 0 || c.Rate().Limit != 5000 {
		t.Fatalf("rate seen %+v", c.Rate())
	}
	f.SetRemaining(10, 0)
	for _, status := range []int{403, 429} {
		f.SecondaryLimit(1, status, 7e9)
		// A new client: go-github remembers a secondary limit and would
		// refuse locally.
		_, err := newClient(t, f, testToken).GetTask(context.Background(), testRepo, 1)
		if !errors.As(err, &rl) || !rl.Secondary {
			t.Fatalf("%d: %v", status, err)
		}
	}
}

func TestParseRepo(t *testing.T) {
	for _, tc := range []struct {
		in          string
		owner, name string
		ok          bool
	}{
		{"acme/board", "acme", "board", true},
		{" acme/my.repo_1 ", "acme", "my.repo_1", true},
		{"acme", "", "", false},
		{"/board", "", "", false},
		{"acme/", "", "", false},
		{"https://github.com/acme/board", "", "", false},
		{"acme/board/extra", "", "", false},
		{"ac me/board", "", "", false},
		{"acme/..", "", "", false},
	} {
		o, n, err := ParseRepo(tc.in)
		if (err == nil) != tc.ok || o != tc.owner || n != tc.name {
			t.Errorf("ParseRepo(%q) = %q, %q, %v", tc.in, o, n, err)
		}
	}
}

func TestNewClientBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "https://api.github.com/"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/"},
	} {
		c, err := NewClient("t", tc.in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.GH().BaseURL.String(); got != tc.want {
			t.Errorf("%q: base %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"ftp://x", "::", "ghe.example.com"} {
		if _, err := NewClient("t", bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewClient("", "", nil); !errors.Is(err, ErrNoToken) {
		t.Errorf("empty token: %v", err)
	}
}
