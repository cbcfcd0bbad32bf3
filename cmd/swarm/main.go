// Command swarm is the agent-swarm node and its CLI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/angie"
	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/agent-swarm/agent-swarm/node/wire"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{}
	root := newRoot(g, stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return fail(stderr, err, g.json || jsonAsked(args))
	}
	return 0
}

var errUsage = errors.New("usage")

// usageError is a mistake in how the command was called (flags,
// arguments, unknown command): exit 2, like a node.UserError.
type usageError struct{ msg string }

func (u usageError) Error() string   { return u.msg }
func (u usageError) Is(t error) bool { return t == errUsage }

func usagef(f string, a ...any) error { return usageError{fmt.Sprintf(f, a...)} }

// defaultHome is $SWARM_HOME, else ~/.swarm.
func defaultHome() (string, error) {
	if h := os.Getenv("SWARM_HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".swarm"), nil
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

// cmdInit makes a home. Without --listen it is a production node behind
// Angie (the seed's quick start: the site is written, the steps left are
// printed); --listen asks for a standalone node (dev, LAN, tests).
func cmdInit(g globals, f flagMap, stdout, stderr io.Writer) error {
	if f["domain"] == "" {
		return usagef("init needs --domain NAME (e.g. agent-a.example.com)")
	}
	if err := wire.ValidDomain(f["domain"]); err != nil { // before the Angie site's own check
		return node.Userf("%v", err)
	}
	prod, err := initMode(f)
	if err != nil {
		return err
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
	note := node.AdvertiseNote(cfg.Domain, cfg.Advertise)
	if g.json {
		return json.NewEncoder(stdout).Encode(map[string]any{"home": g.home, "domain": cfg.Domain, "listen": cfg.Listen, "advertise": cfg.Advertise, "angie_site": site, "note": note})
	}
	if prod {
		printNextSteps(stdout, g.home, cfg, site)
		return nil
	}
	fmt.Fprintf(stdout, "initialised %s in %s\nlisten %s, advertised as %s\nnext: swarm serve --home %s\n", cfg.Domain, g.home, cfg.Listen, cfg.Advertise, g.home)
	if note != "" {
		fmt.Fprintln(stderr, "swarm: note: "+note)
	}
	return nil
}

// initMode says whether init makes a production node (behind Angie) and
// refuses flags of the other mode. --angie is the default, kept as an
// alias; with --listen it keeps the node behind Angie on that port.
func initMode(f flagMap) (prod bool, err error) {
	prod = f["angie"] == "true" || f["listen"] == ""
	for _, k := range []string{"acme-email", "acme-directory", "acme-http-port", "angie-version", "resolver", "ca-bundle"} {
		if _, ok := f[k]; ok && !prod {
			return false, usagef("init: --%s is for production nodes behind Angie: drop --listen, or add --angie to keep the node behind Angie on that loopback port", k)
		}
	}
	for _, k := range []string{"cert", "key", "no-quic"} {
		if _, ok := f[k]; ok && prod {
			return false, usagef("init: --%s is for standalone nodes: add --listen HOST:PORT (without it, init makes a production node behind Angie)", k)
		}
	}
	return prod, nil
}

// cmdServe runs the daemon: the peer API, the local API, and background
// delivery, until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, g globals, f flagMap, stderr io.Writer) error {
	if err := checkWebFlags(f); err != nil {
		return err
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
	n, c, err := openOrAttach(ctx, g.home, node.Options{Log: log, Serve: true, Daemon: true}, socketWait)
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
	stopWeb, err := serveWeb(g.home, f, n, log) // --metrics, --ui (web.go)
	if err != nil {
		return err
	}
	defer stopWeb()
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

// cmdOp runs one operation of the table and prints its result.
func cmdOp(ctx context.Context, g globals, op *ops.Op, raw map[string]any, stdout, stderr io.Writer) error {
	out, err := callOp(ctx, g, op, raw, stderr)
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

// callOp is the one boundary between the CLI and the node: an operation
// and its raw arguments in, its JSON result out. It runs on the node's
// owner: the daemon (started if none serves this home), or with
// SWARM_NO_DAEMON=1 a node opened for this command alone; then sends are
// durably queued, and the node tries to deliver for a few seconds and
// says what is left for the daemon to deliver.
func callOp(ctx context.Context, g globals, op *ops.Op, raw map[string]any, stderr io.Writer) (json.RawMessage, error) {
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
