package github

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
)

func TestResolveAPI(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		env        map[string]string
		url, host  string
		from       string
		err        string
	}{
		{"default", "", nil, "", "github.com", "default", ""},
		{"config", "https://ghe.example.com/api/v3/", nil, "https://ghe.example.com/api/v3/", "ghe.example.com", "config", ""},
		{"config before env", "https://ghe.example.com/api/v3/", map[string]string{"GITHUB_API_URL": "https://other.example.com/api/v3", "GH_HOST": "x.example.com"},
			"https://ghe.example.com/api/v3/", "ghe.example.com", "config", ""},
		{"GITHUB_API_URL", "", map[string]string{"GITHUB_API_URL": "https://ghe.example.com/api/v3", "GH_HOST": "x.example.com"},
			"https://ghe.example.com/api/v3", "ghe.example.com", "GITHUB_API_URL", ""},
		{"GITHUB_API_URL of github.com", "", map[string]string{"GITHUB_API_URL": "https://api.github.com"}, "", "github.com", "GITHUB_API_URL", ""},
		{"GH_HOST enterprise", "", map[string]string{"GH_HOST": "GHE.example.com"}, "https://ghe.example.com/api/v3/", "ghe.example.com", "GH_HOST", ""},
		{"GH_HOST github.com", "", map[string]string{"GH_HOST": "github.com"}, "", "github.com", "GH_HOST", ""},
		{"GH_HOST ghe.com tenant", "", map[string]string{"GH_HOST": "acme.ghe.com"}, "https://api.acme.ghe.com/", "acme.ghe.com", "GH_HOST", ""},
		{"GH_HOST a URL", "", map[string]string{"GH_HOST": "https://ghe.example.com"}, "", "", "", "GH_HOST"},
		{"http config", "http://ghe.example.com/api/v3/", nil, "", "", "", "in clear"},
		{"http env", "", map[string]string{"GITHUB_API_URL": "http://ghe.example.com/api/v3/"}, "", "", "", "GITHUB_API_URL"},
		{"http loopback", "http://127.0.0.1:8080", nil, "http://127.0.0.1:8080", "127.0.0.1", "config", ""},
		{"credentials in URL", "https://u:secret@ghe.example.com", nil, "", "", "", "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, err := ResolveAPI(tc.configured, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatal("the password is in the error")
				}
				return
			}
			if err != nil || api.URL != tc.url || api.Host != tc.host || api.From != tc.from {
				t.Fatalf("got %+v, %v; want %q %q from %s", api, err, tc.url, tc.host, tc.from)
			}
		})
	}
}

// The token is sent in every request: http only to loopback addresses.
func TestNewClientRequiresHTTPS(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://ghe.example.com/api/v3/", true},
		{"http://127.0.0.1:9/", true},
		{"http://localhost:9/", true},
		{"http://[::1]:9/", true},
		{"http://ghe.example.com/api/v3/", false},
		{"http://10.0.0.5/api/v3/", false},
		{"http://127.0.0.1.example.com/", false},
	} {
		_, err := NewClient("t", tc.url, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.url, err)
		}
		if !tc.ok && err != nil && !strings.Contains(err.Error(), "https") {
			t.Errorf("%s: error does not say to use https: %v", tc.url, err)
		}
	}
}

// gh is asked for the API's host, and an Enterprise host's own variables
// come first.
func TestTokenForHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		host string
		env  map[string]string
		want string
		args string // gh's arguments, "" if gh must not run
	}{
		{"github.com asks gh for github.com", "", nil, "gh-token", "auth token --hostname github.com"},
		{"enterprise asks gh for its host", "ghe.example.com", nil, "gh-token", "auth token --hostname ghe.example.com"},
		{"enterprise variable first", "ghe.example.com", map[string]string{"GITHUB_TOKEN": "dotcom", "GH_ENTERPRISE_TOKEN": "ghe"}, "ghe", ""},
		{"GITHUB_ENTERPRISE_TOKEN", "ghe.example.com", map[string]string{"GITHUB_ENTERPRISE_TOKEN": "ghe2"}, "ghe2", ""},
		{"enterprise falls back to GITHUB_TOKEN", "ghe.example.com", map[string]string{"GITHUB_TOKEN": "actions"}, "actions", ""},
		{"enterprise variables ignored for github.com", "github.com", map[string]string{"GH_ENTERPRISE_TOKEN": "ghe"}, "gh-token", "auth token --hostname github.com"},
		{"ghe.com tenant uses GH_TOKEN", "acme.ghe.com", map[string]string{"GH_ENTERPRISE_TOKEN": "ghe", "GH_TOKEN": "tenant"}, "tenant", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := ""
			src := TokenSource{Host: tc.host, Getenv: func(k string) string { return tc.env[k] },
				LookPath: func(string) (string, error) { return "/usr/bin/gh", nil },
				Run: func(_ context.Context, _ string, args ...string) ([]byte, error) {
					ran = strings.Join(args, " ")
					return []byte("gh-token\n"), nil
				}}
			got, err := src.Own(context.Background())
			if err != nil || got != tc.want || ran != tc.args {
				t.Fatalf("got %q, %v, gh ran %q; want %q, gh %q", got, err, ran, tc.want, tc.args)
			}
		})
	}
}

func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		err  string
	}{
		{"defaults", Settings{}, ""},
		{"floor", Settings{PollEvery: node.Duration(MinPollEvery)}, ""},
		{"too often", Settings{PollEvery: node.Duration(200 * time.Millisecond)}, "poll_every 200ms is below the floor of 10s"},
		{"too often for enterprise", Settings{APIURL: "https://ghe.example.com/api/v3/", PollEvery: node.Duration(time.Second)}, "poll_every"},
		{"a local fake may poll fast", Settings{APIURL: "http://127.0.0.1:9/", PollEvery: node.Duration(100 * time.Millisecond)}, ""},
		{"negative", Settings{PollEvery: node.Duration(-time.Second)}, "poll_every"},
		{"http api_url", Settings{APIURL: "http://ghe.example.com/api/v3/"}, "api_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSettings(tc.s)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `"github"`)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}
