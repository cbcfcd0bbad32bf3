package github

import (
	"context"
	"errors"
	"testing"
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
					if name != "/usr/bin/gh" || len(args) != 2 || args[0] != "auth" || args[1] != "token" {
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
