package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// testTLDs are reserved for tests and local use (RFC 2606, 6761, 6762):
// no public DNS answers for them.
var testTLDs = map[string]bool{"test": true, "localhost": true, "local": true, "invalid": true, "example": true, "internal": true}

func publicName(host string) (tld string, public bool) {
	tld = host[strings.LastIndexByte(host, '.')+1:]
	return tld, !testTLDs[tld]
}

// peerHost is the host peers look up to reach the node.
func peerHost(n Node) string {
	if n.BehindProxy {
		return n.Domain
	}
	a := strings.TrimPrefix(n.Advertise, "https://")
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// DNS: the name peers use resolves, to an address of this host.
func DNS(ctx context.Context, n Node, env Env) Result {
	host := peerHost(n)
	if net.ParseIP(host) != nil {
		if tld, public := publicName(n.Domain); !public {
			return skip("dns", "%s is not a public name (.%s); peers reach this node at %s, an address, not by name", n.Domain, tld, n.Advertise)
		}
		return skip("dns", "peers reach this node at %s, an address: its name is not looked up", n.Advertise)
	}
	if tld, public := publicName(host); !public {
		if n.BehindProxy {
			return failed("dns", "make the node with the agent's real domain, in a new home: swarm init --domain NAME",
				"%s is not a public name (.%s): no peer can look up https://%s", host, tld, host)
		}
		return skip("dns", "%s is not a public name (.%s): it resolves only where a hosts file says so", host, tld)
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout)
	defer cancel()
	ips, err := env.LookupIP(ctx, host)
	if err != nil || len(ips) == 0 {
		return failed("dns", fmt.Sprintf("add an A (and/or AAAA) record for %s pointing at this host's public address", host),
			"%s does not resolve: %v", host, err)
	}
	local, _ := env.LocalAddrs()
	for _, ip := range ips {
		for _, l := range local {
			if ip.Equal(l) {
				return ok("dns", "%s resolves to %s, an address of this host", host, ipList(ips))
			}
		}
	}
	return warn("dns", fmt.Sprintf("if tcp or udp fail, point the record for %s at this host", host),
		"%s resolves to %s, not an address of this host's interfaces (right behind 1:1 NAT, as on most cloud VMs)", host, ipList(ips))
}

func ipList(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, " ")
}

// cardURL is where peers read the node's agent card.
func cardURL(n Node) string {
	if n.BehindProxy {
		return "https://" + n.Domain + "/.well-known/swarm-agent"
	}
	return "https://" + strings.TrimPrefix(n.Advertise, "https://") + "/.well-known/swarm-agent"
}

// Card: the node answers with its own agent card over TCP (HTTP/2) or
// UDP (HTTP/3), where peers reach it. The TLS state is returned for the
// certificate check; the certificate is judged there, not here.
func Card(ctx context.Context, n Node, env Env, udp bool) (Result, *tls.ConnectionState) {
	name, proto := "tcp", "TCP"
	if udp {
		name, proto = "udp", "UDP (HTTP/3)"
	}
	if udp && n.NoQUIC && !n.BehindProxy {
		return skip(name, "no_quic: the node serves HTTPS over TCP only, and peers fall back to it"), nil
	}
	url := cardURL(n)
	tc := &tls.Config{ServerName: n.Domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	resp, err := get(ctx, url, tc, udp, env)
	if err != nil {
		return failed(name, cardFix(n, udp), "%s over %s: %s", url, proto, netErr(err, env)), nil
	}
	if !udp {
		proto = "TCP (" + resp.Proto + ")"
	}
	var card node.AgentCard
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return failed(name, statusFix(n, resp.StatusCode), "%s answered %d over %s", url, resp.StatusCode, proto), resp.TLS
	}
	if err := json.Unmarshal(body, &card); err != nil || card.Key == "" {
		return failed(name, statusFix(n, 200), "%s answered over %s, but not with an agent card", url, proto), resp.TLS
	}
	if card.Key != n.Key {
		return failed(name, "the name or Angie's upstream leads to another node: check the DNS record and the site's `server 127.0.0.1:PORT` (swarm angie check)",
			"%s answers with another node's card (%s, key %s) over %s", url, clip(card.Domain), clip(card.Key), proto), resp.TLS
	}
	return ok(name, "%s answers with this node's card over %s", url, proto), resp.TLS
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func cardFix(n Node, udp bool) string {
	switch {
	case n.BehindProxy && udp:
		return "open 443/udp in the firewall; Angie must listen on 443 quic (the shared part's reuseport listener, installed once)"
	case n.BehindProxy:
		return "open 443/tcp in the firewall; install the site and reload Angie (swarm angie check, then systemctl reload angie). From the host itself a public address may not loop back (hairpin NAT): try curl from another machine"
	}
	port := "its port"
	if _, p, err := net.SplitHostPort(strings.TrimPrefix(n.Advertise, "https://")); err == nil {
		port = p
	}
	proto := "tcp"
	if udp {
		proto = "udp"
	}
	return fmt.Sprintf("start the node (swarm serve --home %s), check it listens where it is advertised (swarm config get listen) and that the firewall lets %s/%s in", n.Home, port, proto)
}

func statusFix(n Node, code int) string {
	switch {
	case n.BehindProxy && code == 502:
		return fmt.Sprintf("Angie cannot reach the node on %s: start it (swarm serve --home %s)", n.Listen, n.Home)
	case n.BehindProxy:
		return "Angie answers but does not proxy to this node: install the site (swarm angie check) and reload Angie"
	}
	return "something other than this node answers there: check the advertised address (swarm config get advertise)"
}

// shortErr drops the URL net/http repeats in its errors.
func shortErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Get ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// netErr says what a failed fetch means: a QUIC handshake that timed out
// is UDP that nothing answers.
func netErr(err error, env Env) string {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	if errors.As(err, &idle) || errors.As(err, &hs) {
		return fmt.Sprintf("no answer within %s (UDP dropped, or nothing listens)", env.UDPTimeout)
	}
	return shortErr(err)
}

// get fetches url over HTTP/2 on TCP or HTTP/3 on UDP, never falling back.
func get(ctx context.Context, url string, tc *tls.Config, udp bool, env Env) (*http.Response, error) {
	var rt http.RoundTripper
	if udp {
		t := &http3.Transport{TLSClientConfig: tc, QUICConfig: &quic.Config{HandshakeIdleTimeout: env.UDPTimeout}}
		defer t.Close()
		rt = t
	} else {
		t := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, TLSHandshakeTimeout: env.Timeout}
		defer t.CloseIdleConnections()
		rt = t
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	// The body is read before the transport closes: read it all here.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	cancel()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp, nil
}

// Cert: the certificate peers are shown names the node and is in date.
// Behind Angie (or with --cert) peers verify it by WebPKI; a self-signed
// one must be the node's own, whose pin is in the membership log.
func Cert(n Node, st *tls.ConnectionState, now time.Time, roots *x509.CertPool) Result {
	if st == nil || len(st.PeerCertificates) == 0 {
		return skip("cert", "no TLS connection to look at (see tcp and udp)")
	}
	leaf := st.PeerCertificates[0]
	days := int(leaf.NotAfter.Sub(now).Hours() / 24)
	expiry := fmt.Sprintf("expires %s (%d days)", leaf.NotAfter.UTC().Format(time.RFC3339), days)
	renew := "look for \"certificate renewed\" in Angie's error log; after a failed order Angie waits about 2 hours: fix the cause (DNS, 80/tcp, the resolver, the CA bundle), then systemctl reload angie orders again"
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return failed("cert", renew, "the certificate for %s is out of date: valid %s to %s", n.Domain,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if n.SelfSigned && !n.BehindProxy {
		return ownCert(n, leaf, expiry)
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n.Domain, Intermediates: inter, CurrentTime: now, Roots: roots}); err != nil {
		return failed("cert", renew, "peers refuse the certificate served for %s (names %s, issuer %q): %v",
			n.Domain, strings.Join(leaf.DNSNames, " "), leaf.Issuer.CommonName, err)
	}
	if days < 20 {
		return warn("cert", renew, "valid for %s, but %s: Angie renews 30 days ahead, so renewal is failing", n.Domain, expiry)
	}
	return ok("cert", "valid for %s (issuer %q); %s", strings.Join(leaf.DNSNames, " "), leaf.Issuer.CommonName, expiry)
}

func ownCert(n Node, leaf *x509.Certificate, expiry string) Result {
	b, err := os.ReadFile(n.CertFile)
	blk, _ := pem.Decode(b)
	if err != nil || blk == nil {
		return failed("cert", "make a new home (swarm init), or restore the file", "cannot read the node's certificate %s: %v", n.CertFile, err)
	}
	own, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return failed("cert", "make a new home (swarm init), or restore the file", "%s: %v", n.CertFile, err)
	}
	if transport.Pin(own) != transport.Pin(leaf) {
		return failed("cert", "something else listens on the advertised address, or the node runs from another home: stop it and run swarm serve --home "+n.Home,
			"the certificate served is not the node's own (%s): peers refuse it by its pin", n.CertFile)
	}
	return ok("cert", "self-signed for %s, peers verify it by the pin in the membership log; %s", n.Domain, expiry)
}

// Clock compares this host's clock with a peer's Date header: messages
// carry times, and a clock a minute off marks them.
func Clock(ctx context.Context, env Env) Result {
	if env.Peers == nil {
		return skip("clock", "no daemon to ask for peers: the clock is compared with a peer's")
	}
	peers, err := env.Peers(ctx)
	if err != nil {
		return skip("clock", "could not list peers: %v", err)
	}
	if len(peers) == 0 {
		return skip("clock", "no peer to compare with (no other member in this node's swarms)")
	}
	var errs []string
	for _, p := range peers[:min(3, len(peers))] {
		skew, err := peerSkew(ctx, p, env)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s", p, shortErr(err)))
			continue
		}
		return judgeSkew(p, skew)
	}
	return skip("clock", "no peer answered: %s", strings.Join(errs, "; "))
}

func judgeSkew(peer string, skew time.Duration) Result {
	abs := skew.Abs()
	fix := "keep the clock synchronised: timedatectl set-ntp true (systemd-timesyncd or chrony)"
	switch {
	case abs <= 2*time.Second:
		return ok("clock", "within 2 s of %s's", peer)
	case abs < time.Minute:
		return warn("clock", fix, "%s off %s's", skew.Round(time.Second), peer)
	}
	return failed("clock", fix, "%s off %s's: messages show the sender's clock when it is a minute off", skew.Round(time.Second), peer)
}

// peerSkew reads a peer's Date header. Its certificate is not verified:
// the header is all that is read, and it only informs this report.
func peerSkew(ctx context.Context, addr string, env Env) (time.Duration, error) {
	url := "https://" + strings.TrimPrefix(addr, "https://") + "/.well-known/swarm-agent"
	tc := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	before := env.Now()
	resp, err := get(ctx, url, tc, false, env)
	if err != nil {
		resp, err = get(ctx, url, tc, true, env)
	}
	if err != nil {
		return 0, err
	}
	after := env.Now()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("no Date header")
	}
	// Date has whole seconds: compare with the middle of the exchange,
	// truncated the same way, so a second of rounding is not "skew".
	mid := before.Add(after.Sub(before) / 2).Truncate(time.Second)
	return d.Sub(mid), nil
}

// Disk: the data directory has more free space than the store's reserve
// (below it the node refuses what peers send).
func Disk(dir string, reserve int64) Result {
	if reserve == 0 {
		reserve = store.DefaultMinFree
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return failed("disk", "check the home (swarm init made it)", "cannot read the free space of %s: %v", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	fix := "free space on that file system: below the reserve the node refuses what peers send"
	switch {
	case free < reserve:
		return failed("disk", fix, "%s has %d MB free, below the %d MB reserve", dir, free>>20, reserve>>20)
	case free < 4*reserve:
		return warn("disk", fix, "%s has %d MB free, close to the %d MB reserve", dir, free>>20, reserve>>20)
	}
	return ok("disk", "%s has %d MB free (reserve %d MB)", dir, free>>20, reserve>>20)
}

// Daemon: a daemon serves the node's socket.
func Daemon(ctx context.Context, n Node) Result {
	start := fmt.Sprintf("start it: swarm serve --home %s (under systemd: systemctl start swarm)", n.Home)
	c, err := localapi.Dial(n.Socket)
	if err != nil {
		return failed("daemon", start, "nothing answers on %s: no daemon serves this node, so peers' messages wait on their side and no wake runs", n.Socket)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	o, err := c.Owner(ctx)
	if err != nil {
		return failed("daemon", start, "%s answers, but not as a swarm daemon: %v", n.Socket, err)
	}
	if !o.Daemon {
		return warn("daemon", start, "`swarm %s` (pid %d) runs the node in its own process until it ends; no daemon", o.Command, o.PID)
	}
	return ok("daemon", "pid %d serves %s", o.PID, n.Socket)
}

// DaemonPeers lists, through the daemon, the addresses of the other
// members of this node's swarms.
func DaemonPeers(sock string) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		c, err := localapi.Dial(sock)
		if err != nil {
			return nil, fmt.Errorf("no daemon to ask (%s does not answer)", sock)
		}
		raw, err := c.Call(ctx, "list", nil)
		if err != nil {
			return nil, err
		}
		var swarms []node.SwarmInfo
		if err := json.Unmarshal(raw, &swarms); err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []string
		for _, s := range swarms {
			raw, err := c.Call(ctx, "members", map[string]any{"swarm": s.ID})
			if err != nil {
				continue // a swarm left
			}
			var ms []node.MemberInfo
			_ = json.Unmarshal(raw, &ms)
			for _, m := range ms {
				if !m.Self && m.Addr != "" && !seen[m.Addr] {
					seen[m.Addr] = true
					out = append(out, m.Addr)
				}
			}
		}
		return out, nil
	}
}
