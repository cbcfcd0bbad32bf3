package angie

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// layout is what one Angie holds: the shared part and the agents' sites.
type layout struct {
	shared Shared
	sites  []Site
}

const hostKey = "/var/lib/swarm/angie/quic_host_key"

var layouts = map[string]layout{
	// One agent: what `swarm init --domain agent-a.example.com` writes.
	"single": {Shared{Resolver: "192.0.2.53", ACMEHTTPPort: 80, QUICHostKey: hostKey},
		[]Site{{Domain: "agent-a.example.com", Upstream: "127.0.0.1:7480", ACMEHTTPPort: 80}}},
	// Two agents on one Angie: one shared part, two sites.
	"shared": {Shared{Resolver: "192.0.2.53, 2001:db8::53", ACMEHTTPPort: 80, QUICHostKey: hostKey, CABundle: "/etc/pki/tls/certs/ca-bundle.crt"},
		[]Site{
			{Domain: "agent-a.example.com", Upstream: "127.0.0.1:7480", ACMEHTTPPort: 80},
			{Domain: "agent-b.example.com", Upstream: "127.0.0.1:7513", ACMEHTTPPort: 80, ACMEEmail: "ops@example.com"},
		}},
	// Angie 1.10: no acme_http_port, a port-80 server per site.
	"old-angie": {Shared{Resolver: "[::1]:5353", QUICHostKey: hostKey},
		[]Site{{Domain: "agent-b.example.com", Upstream: "127.0.0.1:7481", ACMEEmail: "ops@example.com"}}},
	"staging-bot": {Shared{Resolver: "127.0.0.53", ACMEHTTPPort: 8080, QUICHostKey: hostKey},
		[]Site{{Domain: "agent-c.example.org", Upstream: "[::1]:7482", ACMEHTTPPort: 8080, ACMEDirectory: "https://acme-staging-v02.api.letsencrypt.org/directory", Paths: []string{"/github/webhook"}, MaxBody: "8m", JoinRate: "10r/m"}}},
}

// render returns the layout's files in include order: name and text.
func render(t *testing.T, l layout) ([]string, map[string]string) {
	t.Helper()
	files := map[string]string{}
	var err error
	if files[SharedFile], err = RenderShared(l.shared); err != nil {
		t.Fatal(err)
	}
	order := []string{SharedFile}
	for _, s := range l.sites {
		name := s.Domain + ".conf"
		if files[name], err = Render(s); err != nil {
			t.Fatal(err)
		}
		order = append(order, name)
	}
	return order, files
}

func TestGolden(t *testing.T) {
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			order, files := render(t, l)
			dir := filepath.Join("testdata", name)
			if *update {
				os.RemoveAll(dir)
				os.MkdirAll(dir, 0o755)
				for f, text := range files {
					os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644)
				}
			}
			have, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
			if len(have) != len(order) {
				t.Errorf("%s holds %d files, the layout %d (go test ./angie -update)", dir, len(have), len(order))
			}
			for _, f := range order {
				want, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("%v (go test ./angie -update)", err)
				}
				if files[f] != string(want) {
					t.Errorf("%s differs from %s; review and run go test ./angie -update\n%s", f, dir, files[f])
				}
			}
		})
	}
}

// directive is one parsed statement: its name, arguments and the path of
// blocks it stands in.
type directive struct {
	name string
	args []string
	ctx  string // e.g. "" (http include), "server", "server/location", "client/location"
	file string
	line int
}

// parse is a small reader of nginx-style config: it fails on unbalanced
// braces and on a statement without its semicolon.
func parse(file, conf string) ([]directive, error) {
	var out []directive
	var stack []string
	var words []string
	line := 1
	tok := strings.Builder{}
	quote := byte(0)
	flush := func() {
		if tok.Len() > 0 {
			words = append(words, tok.String())
			tok.Reset()
		}
	}
	for i := 0; i < len(conf); i++ {
		c := conf[i]
		switch {
		case quote != 0:
			tok.WriteByte(c)
			if c == quote {
				quote = 0
			}
		case c == '#':
			for i < len(conf) && conf[i] != '\n' {
				i++
			}
			line++
		case c == '\'' || c == '"':
			quote = c
			tok.WriteByte(c)
		case c == '\n':
			flush()
			line++
		case c == ' ' || c == '\t':
			flush()
		case c == ';' || c == '{':
			flush()
			if len(words) == 0 {
				return nil, fmt.Errorf("%s:%d: statement without a name", file, line)
			}
			out = append(out, directive{words[0], words[1:], strings.Join(stack, "/"), file, line})
			if c == '{' {
				stack = append(stack, words[0])
			}
			words = nil
		case c == '}':
			flush()
			if len(words) > 0 {
				return nil, fmt.Errorf("%s:%d: %q lacks its semicolon", file, line, strings.Join(words, " "))
			}
			if len(stack) == 0 {
				return nil, fmt.Errorf("%s:%d: unbalanced }", file, line)
			}
			stack = stack[:len(stack)-1]
		default:
			tok.WriteByte(c)
		}
	}
	flush()
	if len(stack) > 0 || len(words) > 0 {
		return nil, fmt.Errorf("%s: unterminated block or statement at end", file)
	}
	return out, nil
}

// contexts says where each directive the generator writes may stand.
var contexts = map[string][]string{
	"resolver": {""}, "client": {""}, "acme_client": {""}, "acme_http_port": {""}, "limit_req_zone": {""},
	"quic_host_key": {""}, "ssl_reject_handshake": {"server"},
	"upstream": {""}, "server": {"", "upstream"}, "keepalive": {"upstream"},
	"listen": {"server"}, "http2": {"server"}, "http3": {"server"}, "server_name": {"server"}, "acme": {"server"},
	"ssl_certificate": {"server"}, "ssl_certificate_key": {"server"}, "ssl_protocols": {"server"},
	"add_header": {"server"}, "client_max_body_size": {"server"}, "proxy_http_version": {"server"},
	"proxy_set_header": {"server"}, "location": {"server", "client"},
	"proxy_pass": {"server/location"}, "limit_req": {"server/location"}, "limit_req_status": {"server/location"},
	"return": {"server/location"}, "proxy_ssl_verify": {"client/location"}, "proxy_ssl_trusted_certificate": {"client/location"},
}

// oncePerAngie are the directives two copies of which make Angie refuse
// its configuration (or, for quic_host_key, silently pick one).
var oncePerAngie = []string{"resolver", "client", "acme_http_port", "quic_host_key"}

// TestStructure reads every layout as Angie would (the shared part, then
// the sites) and checks what makes it load and what makes it safe: each
// directive where it may stand, the once-per-Angie directives and listen
// options exactly once, names distinct across sites, the ACME client
// verification before every acme_client, only the peer API proxied.
func TestStructure(t *testing.T) {
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			order, files := render(t, l)
			var ds []directive
			for _, f := range order {
				d, err := parse(f, files[f])
				if err != nil {
					t.Fatal(err)
				}
				ds = append(ds, d...)
			}
			checkContexts(t, ds)
			checkOnce(t, ds, len(l.sites))
			for _, s := range l.sites {
				d, _ := parse(s.Domain, files[s.Domain+".conf"])
				checkSite(t, s, files[s.Domain+".conf"], d)
			}
		})
	}
}

func checkContexts(t *testing.T, ds []directive) {
	for _, d := range ds {
		allowed, known := contexts[d.name]
		if !known {
			t.Errorf("%s:%d: unexpected directive %s", d.file, d.line, d.name)
			continue
		}
		ok := false
		for _, c := range allowed {
			ok = ok || c == d.ctx
		}
		if !ok {
			t.Errorf("%s:%d: %s in context %q, allowed %v", d.file, d.line, d.name, d.ctx, allowed)
		}
		if d.name == "proxy_pass" && d.ctx == "client/location" {
			t.Errorf("%s:%d: proxy_pass inside the @acme location", d.file, d.line)
		}
	}
}

func checkOnce(t *testing.T, ds []directive, sites int) {
	count := map[string]int{}
	listenOpts := map[string]int{}
	names := map[string]int{}
	clientAt := -1
	for i, d := range ds {
		if d.ctx == "" {
			count[d.name]++
		}
		switch d.name {
		case "client":
			clientAt = i
		case "acme_client", "upstream":
			names[d.name+" "+d.args[0]]++
			if d.name == "acme_client" && (clientAt < 0 || clientAt > i) {
				t.Errorf("%s:%d: acme_client before the client { location @acme } block", d.file, d.line)
			}
		case "limit_req_zone":
			names[d.args[1]]++
		case "listen":
			if len(d.args) > 1 && d.args[len(d.args)-1] == "reuseport" {
				listenOpts[d.args[0]]++
			}
		}
	}
	for _, n := range oncePerAngie {
		if n == "acme_http_port" && count[n] == 0 {
			continue // Angie 1.10
		}
		if count[n] != 1 {
			t.Errorf("%s appears %d times in the layout, want once", n, count[n])
		}
	}
	for _, a := range []string{"443", "[::]:443"} {
		if listenOpts[a] != 1 {
			t.Errorf("listen %s quic reuseport appears %d times, want once per Angie", a, listenOpts[a])
		}
	}
	for n, c := range names {
		if c != 1 {
			t.Errorf("%s is declared %d times", n, c)
		}
	}
	if count["acme_client"] != sites {
		t.Errorf("%d acme_client for %d sites", count["acme_client"], sites)
	}
}

func checkSite(t *testing.T, s Site, conf string, ds []directive) {
	proxied := map[string]bool{}
	for i, d := range ds {
		if d.name == "location" && d.ctx == "server" {
			for _, e := range ds[i+1:] {
				if e.name == "location" {
					break
				}
				if e.name == "proxy_pass" {
					proxied[strings.Join(d.args, " ")] = true
				}
			}
		}
		if d.ctx == "" && d.name != "acme_client" && d.name != "limit_req_zone" && d.name != "upstream" && d.name != "server" {
			t.Errorf("%s:%d: %s belongs in the shared part, not a site", d.file, d.line, d.name)
		}
	}
	want := []string{"= /.well-known/swarm-agent", "= /swarm/v1/join", "/swarm/v1/"}
	for _, p := range s.Paths {
		want = append(want, "= "+p)
	}
	if len(proxied) != len(want) {
		t.Errorf("proxied locations %v, want exactly %v", proxied, want)
	}
	for _, w := range want {
		if !proxied[w] {
			t.Errorf("location %s is not proxied", w)
		}
	}
	body := s.MaxBody
	if body == "" {
		body = "4m"
	}
	for _, must := range []string{"listen 443 ssl;", "listen 443 quic;", "listen [::]:443 quic;", "http2 on;", "http3 on;", "Alt-Svc", "proxy_set_header Connection \"\";", "client_max_body_size " + body + ";"} {
		if !strings.Contains(conf, must) {
			t.Errorf("site %s lacks %q", s.Domain, must)
		}
	}
	if (s.ACMEHTTPPort == 0) != strings.Contains(conf, "listen 80;") {
		t.Error("a port-80 server must be written exactly when acme_http_port is not available")
	}
}

func TestRejects(t *testing.T) {
	for _, s := range []Site{
		{Domain: "UPPER.example.com", Upstream: "127.0.0.1:1"},
		{Domain: "nodot", Upstream: "127.0.0.1:1"},
		{Domain: "a.example.com", Upstream: "0.0.0.0:7480"},
		{Domain: "a.example.com", Upstream: "192.0.2.1:7480"},
		{Domain: "a.example.com", Upstream: "127.0.0.1:1", ACMEDirectory: "http://insecure/directory"},
		{Domain: "a.example.com", Upstream: "127.0.0.1:1", ACMEEmail: "x@y; return 200"},
		{Domain: "a.example.com", Upstream: "127.0.0.1:1", MaxBody: "4m; allow all"},
	} {
		if _, err := Render(s); err == nil {
			t.Errorf("Render(%+v) accepted a site it must refuse", s)
		}
	}
	for _, s := range []Shared{
		{Resolver: "", QUICHostKey: hostKey},
		{Resolver: "dns.example.com", QUICHostKey: hostKey},
		{Resolver: "192.0.2.1; return 200", QUICHostKey: hostKey},
		{Resolver: "fe80::1%eth0", QUICHostKey: hostKey},
		{Resolver: "192.0.2.1", QUICHostKey: "relative/quic_host_key"},
		{Resolver: "192.0.2.1", QUICHostKey: hostKey, CABundle: "certs.pem"},
		{Resolver: "192.0.2.1", QUICHostKey: "/a b/key"},
	} {
		if _, err := RenderShared(s); err == nil {
			t.Errorf("RenderShared(%+v) accepted what it must refuse", s)
		}
	}
}

func TestParseResolver(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":                "192.0.2.53",
		"192.0.2.53:5353":           "192.0.2.53:5353",
		"2001:db8::53":              "[2001:db8::53]",
		"[2001:db8::53]":            "[2001:db8::53]",
		"[2001:db8::53]:53":         "[2001:db8::53]:53",
		"127.0.0.53, 10.0.0.2  ::1": "127.0.0.53 10.0.0.2 [::1]",
		" 10.255.255.53 ":           "10.255.255.53",
		"::ffff:192.0.2.1":          "192.0.2.1",
	} {
		got, err := ParseResolver(in)
		if err != nil || got != want {
			t.Errorf("ParseResolver(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// fakeAngie is the recording stand-in for angie (testdata/fake-angie.sh).
func fakeAngie(t *testing.T) (bin, record string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("testdata", "fake-angie.sh"))
	if err != nil {
		t.Fatal(err)
	}
	record = t.TempDir()
	t.Setenv("FAKE_ANGIE_RECORD", record)
	return bin, record
}

func readLines(t *testing.T, p string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.TrimSpace(string(b)))
}

// TestConfigIsSelfContained: angie -t is pointed only at a throwaway
// prefix (pid, logs, temp dirs, the ACME directory) and at the files
// given, by absolute paths even when they were given relative; the
// prefix is gone afterwards.
func TestConfigIsSelfContained(t *testing.T) {
	bin, record := fakeAngie(t)
	work := t.TempDir()
	t.Chdir(work)
	os.MkdirAll("home/angie", 0o700)
	_, files := render(t, layouts["shared"])
	rel := []string{filepath.Join("home", "angie", SharedFile), filepath.Join("home", "angie", "agent-a.example.com.conf")}
	for _, p := range rel {
		os.WriteFile(p, []byte(files[filepath.Base(p)]), 0o644)
	}
	out, err := TestConfig(context.Background(), bin, rel)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "test is successful") {
		t.Errorf("angie's output not returned: %q", out)
	}
	args := readLines(t, filepath.Join(record, "args"))
	if len(args) < 7 || args[0] != "-t" {
		t.Fatalf("args %q: want -t -p PREFIX -e LOG -c CONF", args)
	}
	prefix := filepath.Clean(args[2])
	if !strings.HasPrefix(prefix, os.TempDir()) || !filepath.IsAbs(prefix) {
		t.Errorf("prefix %s is not a temporary directory", prefix)
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Errorf("the prefix %s was left behind", prefix)
	}
	touched := strings.Split(strings.TrimSpace(string(must(os.ReadFile(filepath.Join(record, "touched"))))), "\n")
	kinds := map[string]bool{}
	for _, l := range touched {
		kind, p, _ := strings.Cut(l, " ")
		kinds[kind] = true
		if kind == "include" {
			continue
		}
		if !strings.HasPrefix(p, prefix+"/") {
			t.Errorf("angie was pointed at %s %s, outside its prefix %s", kind, p, prefix)
		}
	}
	for _, k := range []string{"pid", "error_log", "startup-error-log", "access_log", "acme_client_path", "client_body_temp_path", "proxy_temp_path", "include"} {
		if !kinds[k] {
			t.Errorf("the main configuration sets no %s inside the prefix (touched: %q)", k, touched)
		}
	}
	included := readLines(t, filepath.Join(record, "included"))
	var want []string
	for _, p := range rel {
		want = append(want, filepath.Join(work, p))
	}
	if strings.Join(included, " ") != strings.Join(want, " ") {
		t.Errorf("included %q, want %q in that order", included, want)
	}
	entries, _ := os.ReadDir(work)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "home" {
		t.Errorf("the check left files in the working directory: %v", names)
	}
}

func TestConfigReportsRefusal(t *testing.T) {
	bin, _ := fakeAngie(t)
	t.Setenv("FAKE_ANGIE_REFUSE", "1")
	dir := t.TempDir()
	p := filepath.Join(dir, "site.conf")
	os.WriteFile(p, []byte("# empty\n"), 0o644)
	out, err := TestConfig(context.Background(), bin, []string{p})
	if err == nil || !strings.Contains(out, `unknown directive "client"`) {
		t.Fatalf("want the refusal and Angie's words, got %v: %q", err, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAngieAcceptsTheLayouts runs the real `angie -t` on every layout
// when Angie is installed (it is not in Debian's archive).
func TestAngieAcceptsTheLayouts(t *testing.T) {
	bin, err := exec.LookPath("angie")
	if err != nil {
		t.Skip("angie is not installed here (not in Debian's archive): skipping angie -t; the structural tests still run")
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, HostKeyFile)
			os.WriteFile(key, make([]byte, HostKeySize), 0o600)
			l.shared.QUICHostKey = key
			l.shared.CABundle = ""
			if _, err := os.Stat(DebianCAs); err != nil {
				t.Skip("no CA bundle at " + DebianCAs)
			}
			order, files := render(t, l)
			var paths []string
			for _, f := range order {
				p := filepath.Join(dir, f)
				os.WriteFile(p, []byte(files[f]), 0o644)
				paths = append(paths, p)
			}
			if out, err := TestConfig(context.Background(), bin, paths); err != nil {
				t.Fatalf("angie -t: %v\n%s", err, out)
			}
		})
	}
}
