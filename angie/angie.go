// Package angie writes the Angie configuration of a node in production
// (DESIGN §8): Angie terminates TLS (certificate from its ACME client) and
// QUIC, serves HTTP/3 and HTTP/2 to peers, and proxies only the peer API to
// the node's loopback HTTP/1.1 port.
//
// It comes in two files. The site (one per agent: Render) holds only what
// may appear once per agent: its ACME client, upstream, join-rate zone and
// servers. The shared part (one per Angie: RenderShared) holds what may
// appear only once in a whole Angie: the resolver, the `client` block that
// makes the ACME client verify its server, acme_http_port, quic_host_key
// and the one `listen 443 quic reuseport` (listen options may be given once
// per address). So a site joins an existing Angie, and several agents share
// one, by installing one shared part and one site per agent.
package angie

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// Site describes one node's site.
type Site struct {
	Domain        string // the agent's domain, server_name
	Upstream      string // the node's loopback HTTP/1.1 address, 127.0.0.1:PORT
	ACMEDirectory string // default Let's Encrypt production
	ACMEEmail     string
	// ACMEHTTPPort: Angie >= 1.11 answers HTTP-01 itself (acme_http_port,
	// in the shared part). 0 means Angie 1.10: a port-80 server is written.
	ACMEHTTPPort int
	MaxBody      string // client_max_body_size, equal to the node's limit
	JoinRate     string // limit_req rate for the join endpoint, e.g. "30r/m"
	// Paths are exact paths extensions serve that are proxied too (a
	// webhook: node.PublicPaths).
	Paths []string
}

// Shared is the part of the configuration an Angie holds once, whatever
// number of agents it fronts.
type Shared struct {
	// Resolver: the DNS servers the ACME client resolves its CA with,
	// addresses separated by spaces or commas (IP or IP:PORT, IPv6 in
	// brackets with a port).
	Resolver string
	CABundle string // trusted CAs for verifying the ACME server
	// ACMEHTTPPort: acme_http_port (Angie >= 1.11); 0 writes none.
	ACMEHTTPPort int
	// QUICHostKey is the absolute path of the quic_host_key file: a
	// fixed key, so peers honour the stateless resets of a restarted
	// Angie instead of waiting on a dead connection.
	QUICHostKey string
}

// Defaults and file names.
const (
	LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
	DebianCAs   = "/etc/ssl/certs/ca-certificates.crt"
	// SharedFile is the shared part's name: it sorts before the sites in
	// a directory Angie includes with a wildcard (http.d/*.conf), and the
	// `client` block in it must come before every acme_client.
	SharedFile = "00-swarm-shared.conf"
	// HostKeyFile is the quic_host_key, beside the files (0600).
	HostKeyFile = "quic_host_key"
	// HostKeySize: 80 random bytes, as Angie's documentation makes one.
	HostKeySize = 80
)

// CABundles are where distributions keep the system's CA bundle, in the
// order init looks for one.
var CABundles = []string{
	DebianCAs,                          // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL, CentOS
	"/etc/ssl/ca-bundle.pem",           // openSUSE
	"/etc/ssl/cert.pem",                // Alpine, macOS
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
}

var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

// Check fills defaults and refuses values that would break or open the site.
func (s *Site) Check() error {
	if !domainRE.MatchString(s.Domain) {
		return fmt.Errorf("invalid domain %q: want a lower-case DNS name with a dot", s.Domain)
	}
	host, _, err := net.SplitHostPort(s.Upstream)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("upstream %q must be a loopback host:port: the node trusts X-Forwarded-For only from loopback", s.Upstream)
	}
	if s.ACMEDirectory == "" {
		s.ACMEDirectory = LetsEncrypt
	}
	if !strings.HasPrefix(s.ACMEDirectory, "https://") || strings.ContainsAny(s.ACMEDirectory, " ;{}'\"\n") {
		return fmt.Errorf("ACME directory %q must be an https URL", s.ACMEDirectory)
	}
	if s.ACMEEmail != "" && (!strings.Contains(s.ACMEEmail, "@") || strings.ContainsAny(s.ACMEEmail, " ;{}'\"\n")) {
		return fmt.Errorf("invalid ACME email %q", s.ACMEEmail)
	}
	if s.MaxBody == "" {
		s.MaxBody = "4m"
	}
	if s.JoinRate == "" {
		s.JoinRate = "30r/m"
	}
	for _, v := range append([]string{s.MaxBody, s.JoinRate}, s.Paths...) {
		if strings.ContainsAny(v, " ;{}'\"\n") {
			return fmt.Errorf("value %q would break the config", v)
		}
	}
	return nil
}

// Check fills defaults and refuses values that would break the shared part.
func (s *Shared) Check() error {
	if s.CABundle == "" {
		s.CABundle = DebianCAs
	}
	if !filepath.IsAbs(s.CABundle) || strings.ContainsAny(s.CABundle, " ;{}'\"\n") {
		return fmt.Errorf("CA bundle %q: want an absolute path without spaces or quotes", s.CABundle)
	}
	r, err := ParseResolver(s.Resolver)
	if err != nil {
		return err
	}
	s.Resolver = r
	if s.ACMEHTTPPort < 0 || s.ACMEHTTPPort > 65535 {
		return fmt.Errorf("acme_http_port %d: want a port number", s.ACMEHTTPPort)
	}
	if !filepath.IsAbs(s.QUICHostKey) || strings.ContainsAny(s.QUICHostKey, " ;{}'\"\n") {
		return fmt.Errorf("quic_host_key %q: want an absolute path without spaces or quotes (Angie reads it from its own directory)", s.QUICHostKey)
	}
	return nil
}

// ParseResolver checks a resolver list (addresses separated by spaces or
// commas) and returns it as Angie writes it: space-separated, IPv6 in
// brackets.
func ParseResolver(v string) (string, error) {
	words := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(words) == 0 {
		return "", fmt.Errorf("no resolver: give the DNS server's address (--resolver 192.0.2.53)")
	}
	out := make([]string, 0, len(words))
	for _, w := range words {
		a, err := resolverAddr(w)
		if err != nil {
			return "", fmt.Errorf("resolver %q: want an IP address or IP:PORT (IPv6 as [ADDR]:PORT)", w)
		}
		out = append(out, a)
	}
	return strings.Join(out, " "), nil
}

func resolverAddr(w string) (string, error) {
	if ip, err := netip.ParseAddr(strings.Trim(w, "[]")); err == nil && ip.Zone() == "" {
		if ip.Is6() && !ip.Is4In6() {
			return "[" + ip.String() + "]", nil
		}
		return ip.Unmap().String(), nil
	}
	ap, err := netip.ParseAddrPort(w)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return "", fmt.Errorf("bad address")
	}
	return ap.String(), nil
}

// Name is the identifier used for the ACME client, upstream and zone.
func (s Site) Name() string {
	return "swarm_" + strings.NewReplacer(".", "_", "-", "_").Replace(s.Domain)
}

// Render writes the site file.
func Render(s Site) (string, error) {
	if err := s.Check(); err != nil {
		return "", err
	}
	return execute(siteTmpl, s)
}

// RenderShared writes the shared part.
func RenderShared(s Shared) (string, error) {
	if err := s.Check(); err != nil {
		return "", err
	}
	return execute(sharedTmpl, s)
}

func execute(t *template.Template, v any) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

var sharedTmpl = template.Must(template.New("shared").Parse(`# agent-swarm: the part of the Angie configuration an Angie holds ONCE,
# whatever number of agents it fronts. Generated by ` + "`swarm angie config --write`" + `.
# Include it inside http { } BEFORE the agents' sites, for example as
# /etc/angie/http.d/` + SharedFile + ` (it sorts first). Every directive here may
# appear only once per Angie: if your main configuration already has one
# of them, keep yours and leave that line out (see docs/deploy.md).

# The DNS servers the ACME client resolves its CA with (the host's own).
resolver {{.Resolver}};

# Angie does not verify the ACME server's certificate unless told to. This
# must come before every acme_client; no proxy_pass here (Angie adds its own).
client {
    location @acme {
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {{.CABundle}};
    }
}
{{- if .ACMEHTTPPort}}

# Angie 1.11+ answers the HTTP-01 challenge itself on this port.
acme_http_port {{.ACMEHTTPPort}};
{{- end}}

# A fixed key for QUIC stateless resets and address tokens: after a
# restart Angie's resets are honoured, so peers reconnect at once.
quic_host_key {{.QUICHostKey}};

# The QUIC listener's options, given once per address: the sites listen
# on 443 quic without them. This server answers only unknown names, and
# refuses their handshake.
server {
    listen 443 quic reuseport;
    listen [::]:443 quic reuseport;
    ssl_reject_handshake on;
}
`))

var siteTmpl = template.Must(template.New("site").Parse(`# agent-swarm node {{.Domain}}: generated by ` + "`swarm angie config`" + `.
# Regenerate rather than edit. Include it inside http { } AFTER the shared
# part (` + SharedFile + `), for example as /etc/angie/http.d/{{.Domain}}.conf,
# then: angie -t && systemctl reload angie

acme_client {{.Name}} {{.ACMEDirectory}}{{if .ACMEEmail}} email={{.ACMEEmail}}{{end}};

limit_req_zone $binary_remote_addr zone={{.Name}}_join:1m rate={{.JoinRate}};

upstream {{.Name}} {
    server {{.Upstream}};
    keepalive 16;
}

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    listen 443 quic;
    listen [::]:443 quic;
    http2 on;
    http3 on;
    server_name {{.Domain}};

    acme {{.Name}};
    ssl_certificate $acme_cert_{{.Name}};
    ssl_certificate_key $acme_cert_key_{{.Name}};
    ssl_protocols TLSv1.3;

    add_header Alt-Svc 'h3=":443"; ma=86400' always;
    client_max_body_size {{.MaxBody}};

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    # Overwrite, never append: a client's own X-Forwarded-For is not passed on.
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;

    location = /.well-known/swarm-agent {
        proxy_pass http://{{.Name}};
    }
    location = /swarm/v1/join {
        limit_req zone={{.Name}}_join burst=5 nodelay;
        limit_req_status 429;
        proxy_pass http://{{.Name}};
    }
    location /swarm/v1/ {
        proxy_pass http://{{.Name}};
    }
{{- range .Paths}}
    location = {{.}} {
        proxy_pass http://{{$.Name}};
    }
{{- end}}
    # Nothing else of the node is exposed.
    location / {
        return 404;
    }
}
{{- if not .ACMEHTTPPort}}

# Angie 1.10 has no acme_http_port: it answers the HTTP-01 challenge in a
# server on port 80 that references the ACME client.
server {
    listen 80;
    listen [::]:80;
    server_name {{.Domain}};
    acme {{.Name}};
    location / {
        return 301 https://$host$request_uri;
    }
}
{{- end}}
`))
