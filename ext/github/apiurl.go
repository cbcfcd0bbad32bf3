package github

import (
	"fmt"
	"net"
	"net/url"
	"runtime/debug"
	"strings"
)

// Where the GitHub API is: config.json's api_url, else GITHUB_API_URL
// (set by GitHub Actions, also on Enterprise Server), else GH_HOST (the
// gh CLI's choice of host), else api.github.com. The token is then looked
// up for that host (TokenSource.Host): `gh auth token --hostname HOST`.

// UserAgent names the app to GitHub, as its API asks.
var UserAgent = "agent-swarm/" + moduleVersion()

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// API is the resolved API root and the host a token is for.
type API struct {
	URL  string // "" for api.github.com; else a root NewClient takes
	Host string // github.com, or the Enterprise host ("ghe.example.com")
	From string // where it came from: config, GITHUB_API_URL, GH_HOST or default
}

// ResolveAPI picks the API root: configured (config.json's api_url),
// else the environment's GITHUB_API_URL, else GH_HOST, else github.com.
// A URL must be https, or http to a loopback address (tests, a local
// proxy), so the token never crosses a network in clear.
func ResolveAPI(configured string, getenv func(string) string) (API, error) {
	for _, src := range []struct{ from, val string }{
		{"config", configured},
		{"GITHUB_API_URL", getenv("GITHUB_API_URL")},
	} {
		v := strings.TrimSpace(src.val)
		if v == "" {
			continue
		}
		if err := checkAPIURL(v); err != nil {
			return API{}, fmt.Errorf("%s: %w", src.from, err)
		}
		u, _ := url.Parse(v)
		host := strings.ToLower(u.Hostname())
		if host == "api.github.com" {
			return API{Host: "github.com", From: src.from}, nil
		}
		if strings.HasSuffix(host, ".ghe.com") {
			host = strings.TrimPrefix(host, "api.") // GHE.com: api.TENANT.ghe.com
		}
		return API{URL: v, Host: host, From: src.from}, nil
	}
	if h := strings.ToLower(strings.TrimSpace(getenv("GH_HOST"))); h != "" {
		return apiOfHost(h)
	}
	return API{Host: "github.com", From: "default"}, nil
}

// apiOfHost is gh's mapping of a host to its API root.
func apiOfHost(h string) (API, error) {
	if strings.ContainsAny(h, "/:@ ") || h == "" {
		return API{}, fmt.Errorf("GH_HOST %q: want a host name such as ghe.example.com", h)
	}
	switch {
	case h == "github.com" || h == "api.github.com":
		return API{Host: "github.com", From: "GH_HOST"}, nil
	case strings.HasSuffix(h, ".ghe.com"):
		h = strings.TrimPrefix(h, "api.")
		return API{URL: "https://api." + h + "/", Host: h, From: "GH_HOST"}, nil
	}
	return API{URL: "https://" + h + "/api/v3/", Host: h, From: "GH_HOST"}, nil
}

// Display is the API root as status shows it.
func (a API) Display() string {
	if a.URL == "" {
		return "https://api.github.com/"
	}
	return a.URL
}

// checkAPIURL accepts "" (api.github.com), https URLs, and http ones to
// loopback addresses only: the token travels in every request.
func checkAPIURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("github: bad API URL %q: want https://host[/api/v3/]", raw)
	}
	if u.User != nil {
		return fmt.Errorf("github: bad API URL %q: credentials do not belong in it (the token comes from GITHUB_TOKEN, GH_TOKEN or gh)", u.Redacted())
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("github: API URL %q is http: the token would travel in clear; use https (http is allowed only for loopback addresses)", raw)
	}
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
