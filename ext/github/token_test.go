package github

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenResolution(t *testing.T) {
	ghOK := func(context.Context, string, ...string) ([]byte, error) { return []byte("from-gh\n"), nil }
	ghFails := func(context.Context, string, ...string) ([]byte, error) { return nil, errors.New("not logged in") }
	found := func(string) (string, error) { return "/usr/bin/gh", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	for _, tc := range []struct {
		name string
		env  map[string]string
		look func(string) (string, error)
		run  func(context.Context, string, ...string) ([]byte, error)
		want string
	}{
		{"GITHUB_TOKEN first", map[string]string{"GITHUB_TOKEN": "a", "GH_TOKEN": "b"}, found, ghOK, "a"},
		{"GH_TOKEN second", map[string]string{"GH_TOKEN": "b"}, found, ghOK, "b"},
		{"blank env skipped", map[string]string{"GITHUB_TOKEN": "  ", "GH_TOKEN": " b "}, found, ghOK, "b"},
		{"gh last", nil, found, ghOK, "from-gh"},
		{"gh not installed", nil, missing, ghOK, ""},
		{"gh not logged in", nil, found, ghFails, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			src := TokenSource{
				Getenv:   func(k string) string { return tc.env[k] },
				LookPath: tc.look,
				Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
					ran = true
					if name != "/usr/bin/gh" || strings.Join(args, " ") != "auth token --hostname github.com" {
						t.Fatalf("ran %s %v", name, args)
					}
					return tc.run(ctx, name, args...)
				},
			}
			got, err := src.Token(context.Background())
			if tc.want == "" {
				if !errors.Is(err, ErrNoToken) || err.Error() != "no GitHub token: set GITHUB_TOKEN or GH_TOKEN, or log in with `gh auth login`" {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if tc.env != nil && ran {
				t.Fatal("gh ran although the environment had a token")
			}
		})
	}
}

// TestCallerTokenFirst: the calling command's token (WithToken) comes
// before the process's own; Own ignores it; "" adds nothing.
func TestCallerTokenFirst(t *testing.T) {
	src := TokenSource{Getenv: func(k string) string { return map[string]string{"GITHUB_TOKEN": "own"}[k] }}
	for _, tc := range []struct {
		name, caller, want string
	}{
		{"caller's first", "caller", "caller"},
		{"blank caller ignored", "  ", "own"},
		{"none", "", "own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := WithToken(context.Background(), tc.caller)
			if got, err := src.Token(ctx); err != nil || got != tc.want {
				t.Errorf("Token = %q, %v; want %q", got, err, tc.want)
			}
			if got, _ := src.Own(ctx); got != "own" {
				t.Errorf("Own = %q; want the process's own", got)
			}
		})
	}
}

// TestClientUsesCallerToken: a request made for a caller carries the
// caller's token, on a client with a wrong token of its own and on one
// with none; with no token at all nothing is sent and the error says so.
// A write queued for a caller is made with the caller's token.
func TestClientUsesCallerToken(t *testing.T) {
	f := newFake(t)
	f.CreateIssue(testRepo, "octo", "a task", "", "status:ready")
	ctx := context.Background()
	callerCtx := WithToken(ctx, testToken)
	withWrong := newClient(t, f, "ghp_someoneelse")
	noOwn, err := NewCallerClient(f.URL, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Client
		ctx  context.Context
		want error
	}{
		{"caller's token over a wrong own", withWrong, callerCtx, nil},
		{"wrong own alone", withWrong, ctx, ErrUnauthorized},
		{"caller's token, no own", noOwn, callerCtx, nil},
		{"no token at all", noOwn, ctx, ErrNoToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Requests()
			ts, err := tc.c.ListTasks(tc.ctx, testRepo, "ready")
			if !errors.Is(err, tc.want) || (tc.want == nil && len(ts) != 1) {
				t.Fatalf("ListTasks = %d tasks, %v; want error %v", len(ts), err, tc.want)
			}
			if errors.Is(tc.want, ErrNoToken) && f.Requests() != before {
				t.Error("a request without any token reached GitHub")
			}
		})
	}

	q := NewQueue(openStore(t, t.TempDir()), noOwn, testLog(t), QueueOptions{})
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go q.Run(qctx)
	if _, err := q.EnqueueFor(callerCtx, Write{Kind: WriteCreate, Repo: testRepo, Task: &TaskSpec{Title: "queued for a caller"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the queued write is made with the caller's token", func() bool {
		for _, is := range f.Issues(testRepo) {
			if is.Title == "queued for a caller" {
				return true
			}
		}
		return false
	})
	// The issue shows before the queue has its answer: wait for that.
	eventually(t, 5*time.Second, "the write done", func() bool { return q.Status().Pending == 0 })
	eventually(t, 5*time.Second, "no caller token kept after the write was done", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.tokens) == 0
	})
}
