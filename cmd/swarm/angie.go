package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
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

// resolvConf is where init reads the host's DNS servers (a variable for tests).
var resolvConf = "/etc/resolv.conf"

// angieSettings reads the production flags of swarm init.
func angieSettings(f map[string]string) (*node.AngieSettings, error) {
	s := &node.AngieSettings{ACMEDirectory: f["acme-directory"], ACMEEmail: f["acme-email"], ACMEHTTPPort: 80}
	if v := f["angie-version"]; v != "" {
		major, minor, ok := parseVersion(v)
		switch {
		case !ok:
			return nil, usagef("--angie-version %q: want MAJOR.MINOR, e.g. 1.11", v)
		case major < 1 || major == 1 && minor < 10:
			return nil, node.Userf("Angie %s is too old: the site needs Angie 1.10 or later (its `client {}` block, which makes the ACME client verify the CA's certificate, exists from 1.10.0); upgrade Angie (https://angie.software/en/install/)", v)
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
	var err error
	if s.Resolver, err = initResolver(f["resolver"]); err != nil {
		return nil, err
	}
	if s.CABundle, err = initCABundle(f["ca-bundle"]); err != nil {
		return nil, err
	}
	return s, nil
}

// initResolver is --resolver, else the host's own DNS servers: the ACME
// client needs one to find its CA, and an assumed systemd-resolved
// (127.0.0.53) is absent on many hosts.
func initResolver(flag string) (string, error) {
	if flag != "" {
		r, err := angie.ParseResolver(flag)
		if err != nil {
			return "", usagef("--resolver: %v", err)
		}
		return r, nil
	}
	servers, err := nameservers(resolvConf)
	if err != nil || len(servers) == 0 {
		return "", node.Userf("no DNS server found in %s (%v): give the one Angie's ACME client should use with --resolver ADDR", resolvConf, err)
	}
	return angie.ParseResolver(strings.Join(servers, " "))
}

// nameservers reads the nameserver lines of a resolv.conf. Link-local
// addresses with a zone are left out: Angie's resolver cannot take them.
func nameservers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" && !strings.Contains(fields[1], "%") {
			if _, err := angie.ParseResolver(fields[1]); err == nil {
				out = append(out, fields[1])
			}
		}
	}
	return out, sc.Err()
}

// initCABundle is --ca-bundle (a CA's own root, for a private ACME CA),
// else the system's bundle wherever the distribution keeps it. It must
// hold a PEM certificate: Angie would otherwise refuse every ACME reply.
func initCABundle(flag string) (string, error) {
	paths := angie.CABundles
	if flag != "" {
		abs, err := filepath.Abs(flag)
		if err != nil {
			return "", err
		}
		paths = []string{abs}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			if flag != "" {
				return "", node.Userf("--ca-bundle %s: %v", flag, err)
			}
			continue
		}
		if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return "", node.Userf("CA bundle %s holds no PEM certificate", p)
		}
		return p, nil
	}
	return "", node.Userf("no CA bundle found (looked at %s): install ca-certificates, or give one with --ca-bundle FILE", strings.Join(paths, ", "))
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

// settingsOf is the config's Angie settings, or the defaults of a home
// made before there were any.
func settingsOf(cfg *node.Config) *node.AngieSettings {
	if cfg.Angie == nil {
		return &node.AngieSettings{ACMEHTTPPort: 80}
	}
	return cfg.Angie
}

// siteFor is the Angie site for a node's config: limits follow the node's.
func siteFor(cfg *node.Config) angie.Site {
	s := settingsOf(cfg)
	jr := cfg.JoinRate
	if jr <= 0 {
		jr = 0.5
	}
	return angie.Site{
		Domain: cfg.Domain, Upstream: cfg.Listen,
		ACMEDirectory: s.ACMEDirectory, ACMEEmail: s.ACMEEmail, ACMEHTTPPort: s.ACMEHTTPPort,
		MaxBody: fmt.Sprintf("%dk", wire.MaxBatchBytes>>10),
		// What extensions serve publicly in this config (a webhook).
		Paths:    node.PublicPaths(cfg),
		JoinRate: fmt.Sprintf("%dr/m", max(1, int(jr*60))),
	}
}

// sharedFor is the once-per-Angie part for a node's config; its
// quic_host_key is the one in the home, by absolute path.
func sharedFor(home string, cfg *node.Config) (angie.Shared, error) {
	s := settingsOf(cfg)
	abs, err := filepath.Abs(home)
	if err != nil {
		return angie.Shared{}, err
	}
	resolver := s.Resolver
	if resolver == "" { // a home made before init asked the host
		if resolver, err = initResolver(""); err != nil {
			return angie.Shared{}, err
		}
	}
	return angie.Shared{Resolver: resolver, CABundle: s.CABundle, ACMEHTTPPort: s.ACMEHTTPPort,
		QUICHostKey: filepath.Join(abs, "angie", angie.HostKeyFile)}, nil
}

// angieFiles are the generated files, by path: the shared part, then the
// site (the order Angie must read them in).
type angieFiles struct {
	paths []string
	text  map[string]string
}

func renderAngie(home string, cfg *node.Config) (angieFiles, error) {
	sh, err := sharedFor(home, cfg)
	if err != nil {
		return angieFiles{}, err
	}
	shared, err := angie.RenderShared(sh)
	if err != nil {
		return angieFiles{}, node.Userf("angie shared part: %v", err)
	}
	site, err := angie.Render(siteFor(cfg))
	if err != nil {
		return angieFiles{}, node.Userf("angie site: %v", err)
	}
	dir := filepath.Join(home, "angie")
	sp, tp := filepath.Join(dir, angie.SharedFile), sitePath(home, cfg)
	return angieFiles{paths: []string{sp, tp}, text: map[string]string{sp: shared, tp: site}}, nil
}

func sitePath(home string, cfg *node.Config) string {
	return filepath.Join(home, "angie", cfg.Domain+".conf")
}

func hostKeyPath(home string) string { return filepath.Join(home, "angie", angie.HostKeyFile) }

// writeSite renders the shared part and the site and writes them beside
// the config, with the quic_host_key when there is none yet (an existing
// key is kept: a new one would undo what a fixed key is for). It returns
// the site's path.
func writeSite(home string, cfg *node.Config) (string, error) {
	fs, err := renderAngie(home, cfg)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(home, "angie"), 0o755); err != nil {
		return "", err
	}
	if err := ensureHostKey(hostKeyPath(home)); err != nil {
		return "", err
	}
	for _, p := range fs.paths {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(fs.text[p]), 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", err
		}
	}
	return fs.paths[1], nil
}

// ensureHostKey makes the quic_host_key (random, 0600) unless it exists.
func ensureHostKey(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	key := make([]byte, angie.HostKeySize)
	rand.Read(key)
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(p)
		return err
	}
	return f.Close()
}

func printNextSteps(w io.Writer, home string, cfg *node.Config, site string) {
	shared := filepath.Join(filepath.Dir(site), angie.SharedFile)
	fmt.Fprintf(w, `initialised %s in %s (production: behind Angie)
the node listens on %s (HTTP/1.1, loopback only); peers reach it at %s
Angie site written to %s
the part an Angie holds once (resolver, ACME CA check, quic_host_key) to %s

Next steps:
  1. DNS: point %s (A and/or AAAA) at this host.
  2. Firewall: open 80/tcp (ACME HTTP-01 challenge), 443/tcp and 443/udp (HTTP/3).
  3. Check the files: swarm angie check --home %s
  4. Install them (the shared part once per Angie, see docs/deploy.md if Angie serves other sites):
     sudo cp %s %s /etc/angie/http.d/ && sudo angie -t && sudo systemctl reload angie
  5. Run the node: swarm serve --home %s (examples/systemd/swarm.service runs it as a service)
  6. Then: swarm doctor --home %s
`, cfg.Domain, home, cfg.Listen, cfg.Advertise, site, shared, cfg.Domain, home, shared, site, home, home)
}

// cmdAngie: swarm angie config [--write|--shared] | swarm angie check [--angie PATH].
func cmdAngie(ctx context.Context, g globals, sub string, f flagMap, stdout io.Writer) error {
	cfg, err := node.LoadConfig(g.home)
	if err != nil {
		return err
	}
	if !cfg.BehindProxy {
		return node.Userf("this node is standalone (it serves HTTP/3 itself); the Angie site is for nodes made with `swarm init --domain NAME` (without --listen)")
	}
	if sub == "config" {
		return angieConfig(g, cfg, f, stdout)
	}
	return angieCheck(ctx, g, cfg, f["angie"], stdout)
}

func angieConfig(g globals, cfg *node.Config, f flagMap, stdout io.Writer) error {
	if f["write"] == "true" {
		p, err := writeSite(g.home, cfg)
		if err != nil {
			return err
		}
		shared := filepath.Join(filepath.Dir(p), angie.SharedFile)
		if g.json {
			return json.NewEncoder(stdout).Encode(map[string]string{"site": p, "shared": shared, "quic_host_key": hostKeyPath(g.home)})
		}
		fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", shared, p)
		return nil
	}
	fs, err := renderAngie(g.home, cfg)
	if err != nil {
		return err
	}
	which := fs.paths[1]
	if f["shared"] == "true" {
		which = fs.paths[0]
	}
	_, err = io.WriteString(stdout, fs.text[which])
	return err
}

// angieCheck runs `angie -t` on the files in the home as they are (what
// the operator installs), inside a main configuration of its own (see
// angie.TestConfig). It writes nothing in the home: a file that differs
// from what config.json generates is reported, never rewritten.
func angieCheck(ctx context.Context, g globals, cfg *node.Config, bin string, stdout io.Writer) error {
	fs, err := renderAngie(g.home, cfg)
	if err != nil {
		return err
	}
	var stale []string
	for _, p := range fs.paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return node.Userf("%s does not exist: write the Angie files with `swarm angie config --write%s`", p, homeFlag(g))
		}
		if err != nil {
			return err
		}
		if string(b) != fs.text[p] {
			stale = append(stale, p)
		}
	}
	if err := checkHostKey(hostKeyPath(g.home), g); err != nil {
		return err
	}
	staleNote := ""
	if len(stale) > 0 {
		staleNote = fmt.Sprintf("%s differs from what %s generates (edited by hand, or the config changed): compare with `swarm angie config%s`, then regenerate with `swarm angie config --write%s`",
			strings.Join(stale, " and "), filepath.Join(g.home, node.ConfigFile), homeFlag(g), homeFlag(g))
	}
	if bin == "" {
		if bin, err = exec.LookPath("angie"); err != nil {
			msg := "angie is not installed here (not on PATH), so the files were not checked: install Angie 1.10 or later (https://angie.software/en/install/) or give its path with --angie PATH, then run `swarm angie check` again"
			if staleNote != "" {
				msg += "; also, " + staleNote
			}
			return node.Userf("%s", msg)
		}
	}
	out, err := angie.TestConfig(ctx, bin, fs.paths)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return node.Userf("angie -t refused %s: %s", strings.Join(fs.paths, " with "), oneLine(out))
	}
	if err != nil {
		return fmt.Errorf("running %s -t: %v", bin, err)
	}
	if staleNote != "" {
		return node.Userf("angie -t accepts the files as they are, but %s", staleNote)
	}
	fmt.Fprintf(stdout, "angie -t accepts %s and %s\n", fs.paths[0], fs.paths[1])
	return nil
}

// checkHostKey: the quic_host_key exists and only its owner reads it.
func checkHostKey(p string, g globals) error {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return node.Userf("%s does not exist: `swarm angie config --write%s` makes it (the shared part names it)", p, homeFlag(g))
	}
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return node.Userf("%s is readable by others (mode %04o): chmod 600 %s (Angie's master reads it as root)", p, st.Mode().Perm(), p)
	}
	return nil
}

// homeFlag is " --home H" for messages, unless the home is the default.
func homeFlag(g globals) string {
	abs, err := filepath.Abs(g.home)
	if err != nil || isDefaultHome(abs) {
		return ""
	}
	return " --home " + shellQuote(g.home)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
