package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agent-swarm/agent-swarm/angie"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// angieSettings reads the production flags of swarm init.
func angieSettings(f map[string]string) (*node.AngieSettings, error) {
	s := &node.AngieSettings{ACMEDirectory: f["acme-directory"], ACMEEmail: f["acme-email"], ACMEHTTPPort: 80}
	if v := f["angie-version"]; v != "" {
		major, minor, ok := parseVersion(v)
		switch {
		case !ok:
			return nil, usagef("--angie-version %q: want MAJOR.MINOR, e.g. 1.11", v)
		case major == 1 && minor < 5:
			return nil, node.Userf("Angie %s has no ACME client; the site needs Angie 1.5 or later", v)
		case major == 1 && minor < 11:
			s.ACMEHTTPPort = 0 // no acme_http_port: a port-80 server answers the challenge
		}
	}
	if v := f["acme-http-port"]; v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, usagef("--acme-http-port %q: want a port number", v)
		}
		s.ACMEHTTPPort = p
	}
	return s, nil
}

func parseVersion(v string) (int, int, bool) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, false
	}
	b, _, _ = strings.Cut(b, ".")
	major, e1 := strconv.Atoi(a)
	minor, e2 := strconv.Atoi(b)
	return major, minor, e1 == nil && e2 == nil
}

// siteFor is the Angie site for a node's config: limits follow the node's.
func siteFor(cfg *node.Config) angie.Site {
	s := cfg.Angie
	if s == nil {
		s = &node.AngieSettings{ACMEHTTPPort: 80}
	}
	jr := cfg.JoinRate
	if jr <= 0 {
		jr = 0.5
	}
	return angie.Site{
		Domain: cfg.Domain, Upstream: cfg.Listen,
		ACMEDirectory: s.ACMEDirectory, ACMEEmail: s.ACMEEmail, ACMEHTTPPort: s.ACMEHTTPPort,
		CABundle: s.CABundle, Resolver: s.Resolver,
		MaxBody: fmt.Sprintf("%dk", wire.MaxBatchBytes>>10),
		// What extensions serve publicly in this config (a webhook).
		Paths:    node.PublicPaths(cfg),
		JoinRate: fmt.Sprintf("%dr/m", max(1, int(jr*60))),
	}
}

func sitePath(home string, cfg *node.Config) string {
	return filepath.Join(home, "angie", cfg.Domain+".conf")
}

// writeSite renders the site and writes it beside the config.
func writeSite(home string, cfg *node.Config) (string, error) {
	conf, err := angie.Render(siteFor(cfg))
	if err != nil {
		return "", node.Userf("angie site: %v", err)
	}
	p := sitePath(home, cfg)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

func printNextSteps(w io.Writer, home string, cfg *node.Config, site string) {
	fmt.Fprintf(w, `initialised %s in %s (production: behind Angie)
the node listens on %s (HTTP/1.1, loopback only); peers reach it at %s
Angie site written to %s

Next steps:
  1. DNS: point %s (A and/or AAAA) at this host.
  2. Firewall: open 80/tcp (ACME HTTP-01 challenge), 443/tcp and 443/udp (HTTP/3).
  3. Install the site: sudo cp %s /etc/angie/http.d/
  4. Check it and reload Angie: swarm angie check --home %s && sudo angie -t && sudo systemctl reload angie
  5. Run the node: swarm serve --home %s (examples/systemd/swarm.service runs it as a service)
`, cfg.Domain, home, cfg.Listen, cfg.Advertise, site, cfg.Domain, site, home, home)
}

// cmdAngie: swarm angie config [--write] | swarm angie check [--angie PATH].
func cmdAngie(g globals, sub string, f flagMap, stdout io.Writer) error {
	cfg, err := node.LoadConfig(g.home)
	if err != nil {
		return err
	}
	if sub == "config" {
		return angieConfig(g, cfg, f["write"] == "true", stdout)
	}
	return angieCheck(g, cfg, f["angie"], stdout)
}

func angieConfig(g globals, cfg *node.Config, write bool, stdout io.Writer) error {
	if !cfg.BehindProxy {
		return node.Userf("this node is standalone (it serves HTTP/3 itself); the Angie site is for nodes made with `swarm init --angie`")
	}
	if write {
		p, err := writeSite(g.home, cfg)
		if err != nil {
			return err
		}
		if g.json {
			return json.NewEncoder(stdout).Encode(map[string]string{"site": p})
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
		return nil
	}
	conf, err := angie.Render(siteFor(cfg))
	if err != nil {
		return node.Userf("angie site: %v", err)
	}
	_, err = io.WriteString(stdout, conf)
	return err
}

// angieCheck runs `angie -t` on the site inside a minimal main config, so
// the site is checked alone, before it is installed.
func angieCheck(g globals, cfg *node.Config, bin string, stdout io.Writer) error {
	if !cfg.BehindProxy {
		return node.Userf("this node is standalone; there is no Angie site to check")
	}
	site, err := writeSite(g.home, cfg)
	if err != nil {
		return err
	}
	if bin == "" {
		if bin, err = exec.LookPath("angie"); err != nil {
			return node.Userf("angie is not installed here (not on PATH), so the site was not checked: install Angie 1.5 or later (https://angie.software/en/install/), then run `swarm angie check` again; the site is %s", site)
		}
	}
	dir, err := os.MkdirTemp("", "swarm-angie-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	main := fmt.Sprintf("events {}\nhttp {\n    include %s;\n}\n", site)
	if err := os.WriteFile(filepath.Join(dir, "angie.conf"), []byte(main), 0o644); err != nil {
		return err
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", filepath.Join(dir, "angie.conf")).CombinedOutput()
	if err != nil {
		return node.Userf("angie -t refused %s: %s", site, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(stdout, "angie -t accepts %s\n", site)
	return nil
}
