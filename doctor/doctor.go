// Package doctor checks, from the node's own machine, what a node needs to
// be reachable and useful: its name in DNS, its agent card over TCP and
// over UDP (through Angie in production), its certificate, the clock, the
// disk reserve, the daemon and Claude Code's MCP entry. Each check gives
// one Result: a status, what it found and, when it is not ok, the fix.
package doctor

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Status of a check. Skip and Warn do not fail the run.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Skip Status = "skip"
	Fail Status = "FAIL"
)

// Result is one line of the report.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func ok(check, f string, a ...any) Result {
	return Result{Check: check, Status: OK, Detail: fmt.Sprintf(f, a...)}
}
func skip(check, f string, a ...any) Result {
	return Result{Check: check, Status: Skip, Detail: fmt.Sprintf(f, a...)}
}
func failed(check, fix, f string, a ...any) Result {
	return Result{Check: check, Status: Fail, Detail: fmt.Sprintf(f, a...), Fix: fix}
}
func warn(check, fix, f string, a ...any) Result {
	return Result{Check: check, Status: Warn, Detail: fmt.Sprintf(f, a...), Fix: fix}
}

// Node is what the checks know of the node, from its home.
type Node struct {
	Home        string // absolute
	Domain      string
	Advertise   string // host:port or https://domain
	Listen      string
	BehindProxy bool
	NoQUIC      bool
	SelfSigned  bool
	Key         string // the node's public key as its card writes it
	CertFile    string // standalone: the certificate it serves (absolute)
	DataDir     string
	Socket      string
}

// Env is the outside world, replaceable in tests.
type Env struct {
	LookupIP   func(ctx context.Context, host string) ([]net.IP, error)
	LocalAddrs func() ([]net.IP, error)
	Now        func() time.Time
	// Peers are the addresses of other nodes this one knows (for the
	// clock); nil when there is no way to ask.
	Peers func(ctx context.Context) ([]string, error)
	// Roots verify a WebPKI certificate; nil is the system's.
	Roots *x509.CertPool
	// Timeout bounds each network check; UDPTimeout the QUIC handshake.
	Timeout, UDPTimeout time.Duration
}

// DefaultEnv is the real machine.
func DefaultEnv() Env {
	return Env{
		LookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		},
		LocalAddrs: localAddrs,
		Now:        time.Now,
		Timeout:    5 * time.Second,
		UDPTimeout: 3 * time.Second,
	}
}

func localAddrs() ([]net.IP, error) {
	as, err := net.InterfaceAddrs()
	var out []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out, err
}

// Failed counts the failed checks.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

// Print writes one line per check: status, name, what was found and, for
// a check that is not ok, the fix.
func Print(w io.Writer, rs []Result) {
	for _, r := range rs {
		line := fmt.Sprintf("%-4s  %-7s %s", r.Status, r.Check, oneLine(r.Detail))
		if r.Fix != "" {
			line += "; fix: " + oneLine(r.Fix)
		}
		fmt.Fprintln(w, line)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Run runs every check of the node in order. extra results (checks that
// belong to the caller, such as Claude Code's entry) come last.
func Run(ctx context.Context, n Node, env Env, extra ...func(context.Context) Result) []Result {
	rs := []Result{Config(n), DNS(ctx, n, env)}
	tcp, tcpState := Card(ctx, n, env, false)
	udp, udpState := Card(ctx, n, env, true)
	rs = append(rs, tcp, udp)
	state := tcpState
	if state == nil {
		state = udpState
	}
	rs = append(rs, Cert(n, state, env.Now(), env.Roots), Clock(ctx, env), Disk(n.DataDir, 0), Daemon(ctx, n))
	for _, f := range extra {
		rs = append(rs, f(ctx))
	}
	return rs
}

// Config describes the node checked.
func Config(n Node) Result {
	if n.BehindProxy {
		return ok("config", "%s behind Angie: the node on %s (HTTP/1.1, loopback), peers at %s", n.Domain, n.Listen, n.Advertise)
	}
	mode := "HTTP/3 + HTTPS"
	if n.NoQUIC {
		mode = "HTTPS only"
	}
	return ok("config", "%s standalone: serves %s on %s, advertised as %s", n.Domain, mode, n.Listen, n.Advertise)
}
