// Command swarm is the agent-swarm node and its CLI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agent-swarm/agent-swarm/angie"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the flags every command takes.
type globals struct {
	home     string
	json     bool
	logLevel string
	logFile  string
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g, rest, err := parseGlobals(args)
	if err != nil {
		return fail(stderr, err)
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "--help" || rest[0] == "-h" {
		usage(stdout)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch rest[0] {
	case "init":
		err = cmdInit(g, rest[1:], stdout)
	case "serve":
		err = cmdServe(ctx, g, rest[1:], stderr)
	case "stop":
		err = cmdStop(ctx, g, rest[1:], stdout)
	case "demo":
		err = cmdDemo(ctx, g, stdout, stderr)
	case "mcp":
		err = cmdMCP(ctx, g, rest[1:], stdin, stdout, stderr)
	case "bench":
		err = cmdBench(ctx, g, rest[1:], stdout, stderr)
	case "angie":
		err = cmdAngie(g, rest[1:], stdout, stderr)
	case "hook":
		err = cmdHook(ctx, g, rest[1:], stdin, stdout, stderr)
	case "claude":
		err = cmdClaudeSetup(ctx, g, rest[1:], stdout)
	case "bench-peer":
		err = cmdBenchPeer(ctx, rest[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "swarm protocol swarm/v1")
	default:
		err = cmdOp(ctx, g, rest, stdin, stdout, stderr)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// fail prints one clear line on stderr.
func fail(stderr io.Writer, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(stderr, "swarm: "+msg)
	if node.IsUser(err) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (u usageError) Error() string   { return u.msg }
func (u usageError) Is(t error) bool { return t == errUsage }

func usagef(f string, a ...any) error { return usageError{fmt.Sprintf(f, a...)} }

func parseGlobals(args []string) (globals, []string, error) {
	g := globals{home: os.Getenv("SWARM_HOME"), logLevel: "info"}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") {
			rest = append(rest, a)
			continue
		}
		take := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", usagef("--%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "home":
			g.home, err = take()
		case "log-level":
			g.logLevel, err = take()
		case "log-file":
			g.logFile, err = take()
		case "json":
			g.json = !hasVal || val == "true"
		case "":
			rest = append(rest, args[i:]...)
			i = len(args)
		default:
			rest = append(rest, a)
		}
		if err != nil {
			return g, nil, err
		}
	}
	if g.home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return g, nil, err
		}
		g.home = filepath.Join(h, ".swarm")
	}
	return g, rest, nil
}

// logger writes structured logs to stderr or a file, never to stdout.
func (g globals) logger(stderr io.Writer) (zerolog.Logger, func(), error) {
	lvl, err := zerolog.ParseLevel(g.logLevel)
	if err != nil {
		return zerolog.Nop(), nil, usagef("unknown --log-level %q", g.logLevel)
	}
	w, closeFn := stderr, func() {}
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return zerolog.Nop(), nil, err
		}
		w, closeFn = f, func() { f.Close() }
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), closeFn, nil
}

// flagSet parses --name value, --name=value and bare positionals anywhere.
func parseFlags(args []string, bools map[string]bool) (map[string]string, []string, error) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "--") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		if !hasVal {
			if bools[name] {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, nil, usagef("--%s needs a value", name)
				}
				i++
				val = args[i]
			}
		}
		if _, dup := flags[name]; dup {
			return nil, nil, usagef("--%s given twice", name)
		}
		flags[name] = val
	}
	return flags, pos, nil
}

func cmdInit(g globals, args []string, stdout io.Writer) error {
	f, pos, err := parseFlags(args, map[string]bool{"angie": true, "no-quic": true})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("init takes no positional arguments (got %q)", pos[0])
	}
	prod := f["angie"] == "true"
	for k := range f {
		switch k {
		case "domain", "listen", "advertise", "cert", "key", "angie", "no-quic":
		case "acme-email", "acme-directory", "acme-http-port", "angie-version":
			if !prod {
				return usagef("init: --%s is for production nodes behind Angie; add --angie", k)
			}
		default:
			return usagef("init: unknown flag --%s", k)
		}
	}
	if f["domain"] == "" {
		return usagef("init needs --domain NAME (e.g. agent-a.example.com)")
	}
	o := node.InitOptions{Domain: f["domain"], Listen: f["listen"], Advertise: f["advertise"], CertFile: f["cert"], KeyFile: f["key"], NoQUIC: f["no-quic"] == "true"}
	if prod {
		if o.Angie, err = angieSettings(f); err != nil {
			return err
		}
		// Refuse bad ACME settings before anything is written.
		if _, err := angie.Render(siteFor(&node.Config{Domain: o.Domain, Listen: "127.0.0.1:7080", Angie: o.Angie})); err != nil {
			return node.Userf("%v", err)
		}
	}
	cfg, err := node.Init(g.home, o)
	if err != nil {
		return err
	}
	site := ""
	if prod {
		if site, err = writeSite(g.home, cfg); err != nil {
			return err
		}
	}
	if g.json {
		return json.NewEncoder(stdout).Encode(map[string]any{"home": g.home, "domain": cfg.Domain, "listen": cfg.Listen, "advertise": cfg.Advertise, "angie_site": site})
	}
	if prod {
		printNextSteps(stdout, g.home, cfg, site)
		return nil
	}
	fmt.Fprintf(stdout, "initialised %s in %s\nlisten %s, advertised as %s\nnext: swarm serve --home %s\n", cfg.Domain, g.home, cfg.Listen, cfg.Advertise, g.home)
	return nil
}

// cmdServe runs the daemon: the peer API, the local API, and background
// delivery, until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, g globals, args []string, stderr io.Writer) error {
	f, pos, err := parseFlags(args, map[string]bool{"mcp-allow-remote": true})
	if err != nil {
		return err
	}
	for k := range f {
		if k != "mcp-listen" && k != "mcp-allow-remote" {
			return usagef("serve: unknown flag --%s", k)
		}
	}
	if len(pos) > 0 {
		return usagef("serve takes no positional arguments")
	}
	if f["mcp-listen"] != "" {
		if err := mcp.CheckListen(f["mcp-listen"], f["mcp-allow-remote"] == "true"); err != nil {
			return node.Userf("%v", err)
		}
	}
	log, closeLog, err := g.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	sock := filepath.Join(g.home, node.SocketFile)
	if c, err := localapi.Dial(sock); err == nil {
		return alreadyServed(ctx, c, sock)
	}
	unlock, err := serveLock(ctx, g.home)
	if err != nil {
		return err
	}
	defer unlock()
	if c, err := localapi.Dial(sock); err == nil { // started while this one waited for the lock
		return alreadyServed(ctx, c, sock)
	}
	// Right after another command let go of the store, or while another
	// owner starts, the store is briefly locked: wait, bounded.
	n, c, err := openOrAttach(ctx, g.home, node.Options{Log: log, Serve: true, Wake: node.WakeOptions{Run: true}}, socketWait)
	if err != nil {
		return err
	}
	if c != nil {
		return alreadyServed(ctx, c, sock)
	}
	defer n.Close()
	api, err := localapi.Listen(sock, n, log)
	if err != nil {
		return err
	}
	unlock() // commands waiting to start a daemon find this one now
	if addr := f["mcp-listen"]; addr != "" {
		stopMCP, err := serveMCPHTTP(g.home, addr, n, log)
		if err != nil {
			return err
		}
		defer stopMCP()
	}
	ready := filepath.Join(g.home, node.ReadyFile)
	_ = os.WriteFile(ready, []byte(n.Addr()+"\n"), 0o600)
	log.Info().Str("domain", n.Domain()).Str("addr", n.Addr()).Str("socket", sock).Int("pid", os.Getpid()).Msg("serving")
	select {
	case <-ctx.Done():
	case <-api.Stopping(): // swarm stop
	}
	log.Info().Msg("shutting down")
	os.Remove(ready)
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = api.Close(sctx)
	os.Remove(sock)
	return n.Close()
}

// cmdOp runs one operation of the table on the node's owner: the daemon
// (started if none serves this home), or with SWARM_NO_DAEMON=1 a node
// opened for this command alone.
func cmdOp(ctx context.Context, g globals, words []string, stdin io.Reader, stdout, stderr io.Writer) error {
	op, rest := ops.FindCLI(words)
	if op == nil {
		return usagef("unknown command %q: `swarm help` lists the commands", strings.Join(words, " "))
	}
	raw, err := cliArgs(op, rest, stdin)
	if err != nil {
		return err
	}
	out, err := runLocal(ctx, g, op, raw, stderr)
	if err != nil {
		return err
	}
	if g.json {
		_, err = fmt.Fprintln(stdout, strings.TrimRight(string(out), "\n"))
		return err
	}
	text, err := op.Text(out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, text)
	return nil
}

// runLocal runs one operation through attach. When the node runs in this
// process (SWARM_NO_DAEMON=1), sends are durably queued; the node tries to
// deliver for a few seconds and says what is left for the daemon to
// deliver.
func runLocal(ctx context.Context, g globals, op *ops.Op, raw map[string]any, stderr io.Writer) (json.RawMessage, error) {
	lvl := g.logLevel
	if lvl == "info" {
		lvl = "warn"
	}
	g.logLevel = lvl
	log, closeLog, err := g.logger(stderr)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	conn, err := attach(ctx, g, attachOpts{command: op.CLI, notice: stderr}, log)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out, err := conn.Call(ctx, op.Name, raw)
	if err != nil {
		return nil, err
	}
	if conn.Node != nil && op.Network {
		if left := conn.Node.Flush(ctx, 5*time.Second); left > 0 {
			fmt.Fprintf(stderr, "swarm: %d deliveries still queued; `swarm serve` delivers them\n", left)
		}
	}
	return out, nil
}

// cliArgs maps flags and positionals onto the operation's parameters.
func cliArgs(op *ops.Op, args []string, stdin io.Reader) (map[string]any, error) {
	bools := map[string]bool{}
	byFlag := map[string]ops.Param{}
	var positional []ops.Param
	for _, p := range op.Params {
		flag := strings.ReplaceAll(p.Name, "_", "-")
		byFlag[flag] = p
		if p.Kind == ops.Bool {
			bools[flag] = true
		}
		if p.Positional {
			positional = append(positional, p)
		}
	}
	flags, pos, err := parseFlags(args, bools)
	if err != nil {
		return nil, err
	}
	raw := map[string]any{}
	for f, v := range flags {
		p, ok := byFlag[f]
		if !ok {
			return nil, usagef("%s: unknown flag --%s", op.CLI, f)
		}
		if p.Kind == ops.Strings {
			raw[p.Name] = strings.Split(v, ",")
		} else {
			raw[p.Name] = v
		}
	}
	for i, v := range pos {
		if i >= len(positional) {
			return nil, usagef("%s: unexpected argument %q", op.CLI, v)
		}
		p := positional[i]
		if p.Kind == ops.Strings {
			raw[p.Name] = pos[i:]
			break
		}
		if v == "-" && p.Name == "body" {
			b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
			if err != nil {
				return nil, err
			}
			v = strings.TrimRight(string(b), "\n")
		}
		if _, dup := raw[p.Name]; dup {
			return nil, usagef("%s: %s given twice", op.CLI, p.Name)
		}
		raw[p.Name] = v
	}
	return raw, nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `swarm: peer-to-peer messaging for AI coding agents

  swarm init --domain NAME [--listen HOST:PORT] [--advertise ADDR] [--cert FILE --key FILE] [--no-quic]
      standalone node: HTTP/3 (and HTTPS over TCP) itself, self-signed unless --cert/--key (reloaded when they change)
  swarm init --domain NAME --angie [--acme-email E] [--acme-directory URL] [--angie-version 1.11]
      production node behind Angie: loopback HTTP/1.1, writes the Angie site and prints the steps left
  swarm claude setup [--project DIR] [--scope project|user]
      Claude Code integration: the MCP server entry, the hooks, a swarm subagent (idempotent, never overwrites)
  swarm hook session-start|user-prompt-submit
      a Claude Code hook: unread messages as additional context (framed as untrusted), marked read
  swarm angie config [--write] | swarm angie check [--angie PATH]
      print or rewrite the Angie site from the config; run angie -t on it
  swarm serve [--mcp-listen 127.0.0.1:PORT]   run the node daemon (optionally MCP over streamable HTTP, bearer token in HOME/mcp.token)
  swarm demo                  three nodes on loopback, every operation, then exit
  swarm bench [--n N] [--quick] [--swarm100]   raw HTTP/3 beside the node: round trip, throughput, fan-out 10/50, RSS, ready time, with ratios
  swarm bench --load [--rate 1000] [--duration 60s]   three daemons under a paced load: RSS over time, 0 lost, 0 duplicated
  swarm mcp [--channel]       MCP on stdio: every operation as a swarm_* tool (claude mcp add swarm -- swarm mcp)
`)
	for _, op := range ops.All() {
		var ps []string
		for _, p := range op.Params {
			s := "--" + strings.ReplaceAll(p.Name, "_", "-")
			if p.Kind != ops.Bool {
				s += " " + strings.ToUpper(p.Name)
			}
			if p.Positional {
				s = strings.ToUpper(p.Name)
			}
			if !p.Required {
				s = "[" + s + "]"
			}
			ps = append(ps, s)
		}
		fmt.Fprintf(w, "  swarm %s %s\n      %s\n", op.CLI, strings.Join(ps, " "), op.Summary)
	}
	fmt.Fprint(w, `
Every command takes --home DIR (default $SWARM_HOME or ~/.swarm) and --json.
`)
}
