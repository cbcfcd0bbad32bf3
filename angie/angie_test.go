package angie

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var cases = map[string]Site{
	"default":     {Domain: "agent-a.example.com", Upstream: "127.0.0.1:7480", ACMEHTTPPort: 80},
	"old-angie":   {Domain: "agent-b.example.com", Upstream: "127.0.0.1:7481", ACMEEmail: "ops@example.com"},
	"staging-bot": {Domain: "agent-c.example.org", Upstream: "[::1]:7482", ACMEHTTPPort: 8080, ACMEDirectory: "https://acme-staging-v02.api.letsencrypt.org/directory", Paths: []string{"/github/webhook"}, MaxBody: "8m", JoinRate: "10r/m"},
}

func TestGolden(t *testing.T) {
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".conf")
			if *update {
				os.WriteFile(path, []byte(got), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./angie -update)", err)
			}
			if got != string(want) {
				t.Errorf("site differs from %s; review and run go test ./angie -update\n%s", path, got)
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
	line int
}

// parse is a small reader of nginx-style config: it fails on unbalanced
// braces and on a statement without its semicolon.
func parse(conf string) ([]directive, error) {
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
		case c == ';':
			flush()
			if len(words) == 0 {
				return nil, fmt.Errorf("line %d: empty statement", line)
			}
			out = append(out, directive{words[0], words[1:], strings.Join(stack, "/"), line})
			words = nil
		case c == '{':
			flush()
			if len(words) == 0 {
				return nil, fmt.Errorf("line %d: block without a name", line)
			}
			out = append(out, directive{words[0], words[1:], strings.Join(stack, "/"), line})
			stack = append(stack, words[0])
			words = nil
		case c == '}':
			flush()
			if len(words) > 0 {
				return nil, fmt.Errorf("line %d: %q lacks its semicolon", line, strings.Join(words, " "))
			}
			if len(stack) == 0 {
				return nil, fmt.Errorf("line %d: unbalanced }", line)
			}
			stack = stack[:len(stack)-1]
		default:
			tok.WriteByte(c)
		}
	}
	flush()
	if len(stack) > 0 || len(words) > 0 {
		return nil, fmt.Errorf("unterminated block or statement at end")
	}
	return out, nil
}

// contexts says where each directive the generator writes may stand.
var contexts = map[string][]string{
	"resolver": {""}, "client": {""}, "acme_client": {""}, "acme_http_port": {""}, "limit_req_zone": {""},
	"upstream": {""}, "server": {"", "upstream"}, "keepalive": {"upstream"},
	"listen": {"server"}, "http2": {"server"}, "http3": {"server"}, "server_name": {"server"}, "acme": {"server"},
	"ssl_certificate": {"server"}, "ssl_certificate_key": {"server"}, "ssl_protocols": {"server"},
	"add_header": {"server"}, "client_max_body_size": {"server"}, "proxy_http_version": {"server"},
	"proxy_set_header": {"server"}, "location": {"server", "client"},
	"proxy_pass": {"server/location"}, "limit_req": {"server/location"}, "limit_req_status": {"server/location"},
	"return": {"server/location"}, "proxy_ssl_verify": {"client/location"}, "proxy_ssl_trusted_certificate": {"client/location"},
}

func TestStructure(t *testing.T) {
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			conf, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := parse(conf)
			if err != nil {
				t.Fatal(err)
			}
			idx := map[string]int{}
			proxied := map[string]bool{}
			for i, d := range ds {
				allowed, known := contexts[d.name]
				if !known {
					t.Errorf("line %d: unexpected directive %s", d.line, d.name)
					continue
				}
				ok := false
				for _, c := range allowed {
					ok = ok || c == d.ctx
				}
				if !ok {
					t.Errorf("line %d: %s in context %q, allowed %v", d.line, d.name, d.ctx, allowed)
				}
				if _, seen := idx[d.name]; !seen {
					idx[d.name] = i
				}
				if d.name == "proxy_pass" && d.ctx == "client/location" {
					t.Errorf("line %d: proxy_pass inside the @acme location", d.line)
				}
				if d.name == "location" && d.ctx == "server" && len(d.args) > 0 {
					// the next proxy_pass belongs to this location
					for _, e := range ds[i+1:] {
						if e.name == "location" {
							break
						}
						if e.name == "proxy_pass" {
							proxied[strings.Join(d.args, " ")] = true
						}
					}
				}
			}
			if _, ok := idx["proxy_ssl_verify"]; !ok || idx["client"] > idx["acme_client"] {
				t.Error("the @acme verification block must exist and come before acme_client")
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
			for _, must := range []string{"listen 443 ssl;", "listen 443 quic reuseport;", "http2 on;", "http3 on;", "Alt-Svc", "proxy_set_header Connection \"\";", "client_max_body_size " + s.MaxBody + ";"} {
				if s.MaxBody == "" && strings.HasPrefix(must, "client_max_body_size") {
					must = "client_max_body_size 4m;"
				}
				if !strings.Contains(conf, must) {
					t.Errorf("site lacks %q", must)
				}
			}
			if (s.ACMEHTTPPort == 0) != strings.Contains(conf, "listen 80;") {
				t.Error("a port-80 server must be written exactly when acme_http_port is not available")
			}
		})
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
}

// TestAngieAcceptsTheSite runs `angie -t` on the site inside a minimal main
// config when Angie is installed.
func TestAngieAcceptsTheSite(t *testing.T) {
	bin, err := exec.LookPath("angie")
	if err != nil {
		t.Skip("angie is not installed here (not in Debian's archive): skipping angie -t; the structural test above still runs")
	}
	dir := t.TempDir()
	conf, _ := Render(cases["default"])
	os.WriteFile(filepath.Join(dir, "site.conf"), []byte(conf), 0o644)
	main := "events {}\nhttp {\n include " + filepath.Join(dir, "site.conf") + ";\n}\n"
	os.WriteFile(filepath.Join(dir, "angie.conf"), []byte(main), 0o644)
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", filepath.Join(dir, "angie.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("angie -t: %v\n%s", err, out)
	}
}
