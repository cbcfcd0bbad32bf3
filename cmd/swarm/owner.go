package main

// One owner of the store, always. Badger lets one process open a home's
// store; every other process reaches the node through the owner's local
// API socket (HOME/swarm.sock). The first command that needs the node and
// finds no socket starts the daemon (`swarm serve`, detached) and
// attaches; with SWARM_NO_DAEMON=1 it runs the node itself instead, and
// serves the socket while it lives so others can still attach.
// docs/cli.md ("The daemon and the store") is the user's side of this.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/rs/zerolog"
)

// Files of the owner logic inside a home.
const (
	daemonLogFile  = "daemon.log"  // an auto-started daemon's stdout and stderr
	daemonLockFile = "daemon.lock" // flock held around "check socket, start daemon"
	noDaemonEnv    = "SWARM_NO_DAEMON"
	// autostartEnv marks a daemon started by a command, which holds the
	// start lock on the daemon's behalf.
	autostartEnv = "SWARM_AUTOSTARTED"
)

// How long a command waits for the daemon's socket (it starting, or
// another process that holds the store bringing its socket up). A hook
// waits less: Claude Code gives it 10 s in all.
const (
	socketWait     = 10 * time.Second
	hookSocketWait = 6 * time.Second
)

// attachOpts say what a command needs of the node.
type attachOpts struct {
	command string        // the command's name, for `swarm serve`'s and `swarm stop`'s messages
	serve   bool          // run in-process: serve the peer API as well (swarm mcp)
	wait    time.Duration // bound on waiting for a socket; 0 is socketWait
	// notice, when set, is told that a daemon was started (a CLI's
	// stderr: a background process should not appear unannounced).
	notice io.Writer
}

// nodeConn is a command's way to the node: the local API of the process
// that owns the store, or (SWARM_NO_DAEMON=1) the node in this process.
type nodeConn struct {
	mcp.Caller
	Node  *node.Node // non-nil when the node runs in this process
	close func()
}

// Close releases the node: the socket and the store when this process
// owns them, nothing otherwise.
func (c *nodeConn) Close() {
	if c.close != nil {
		c.close()
	}
}

// noDaemon reports the opt-out: the node runs in the command's process.
func noDaemon() bool {
	v := os.Getenv(noDaemonEnv)
	return v != "" && v != "0" && v != "false"
}

// attach reaches the node of g.home: the socket when a process serves it;
// else, by default, a daemon started now; else (SWARM_NO_DAEMON=1) the
// node opened in this process, whose socket it then serves.
func attach(ctx context.Context, g globals, o attachOpts, log zerolog.Logger) (*nodeConn, error) {
	if o.wait == 0 {
		o.wait = socketWait
	}
	home, err := filepath.Abs(g.home)
	if err != nil {
		return nil, err
	}
	// An uninitialised home says so, rather than failing a daemon.
	if _, err := node.LoadConfig(g.home); err != nil {
		return nil, err
	}
	sock := filepath.Join(home, node.SocketFile)
	if c, err := localapi.Dial(sock); err == nil {
		return remoteConn(home, o, c, log), nil
	}
	if noDaemon() {
		return openInProcess(ctx, home, o, log)
	}
	c, err := ensureDaemon(ctx, home, o.wait, o.notice, log)
	if err != nil {
		return nil, err
	}
	return remoteConn(home, o, c, log), nil
}

// remoteConn wraps a socket client: the command's own credentials (the
// environment variables extensions declared, node.RegisterCallerEnv) go
// with every call, and a call that cannot reach the socket (its owner
// ended) attaches again once.
func remoteConn(home string, o attachOpts, c *localapi.Client, log zerolog.Logger) *nodeConn {
	c.CallerEnv = node.CallerEnvFrom(os.Getenv)
	r := &reattacher{home: home, o: o, log: log, c: c}
	return &nodeConn{Caller: r}
}

type reattacher struct {
	home string
	o    attachOpts
	log  zerolog.Logger
	mu   sync.Mutex
	c    *localapi.Client
}

func (r *reattacher) Call(ctx context.Context, op string, args map[string]any) (json.RawMessage, error) {
	r.mu.Lock()
	c := r.c
	r.mu.Unlock()
	out, err := c.Call(ctx, op, args)
	if err == nil || !unreachable(err) {
		return out, err
	}
	// Nothing reached the node (connection refused, socket gone), so
	// running the call again cannot run it twice.
	r.log.Info().Err(err).Msg("the node's socket went away; attaching again")
	var nc *localapi.Client
	if noDaemon() {
		nc, err = waitSocket(ctx, filepath.Join(r.home, node.SocketFile), r.o.wait, nil)
	} else {
		nc, err = ensureDaemon(ctx, r.home, r.o.wait, r.o.notice, r.log)
	}
	if err != nil {
		return nil, err
	}
	nc.CallerEnv = c.CallerEnv
	r.mu.Lock()
	r.c = nc
	r.mu.Unlock()
	return nc.Call(ctx, op, args)
}

// unreachable: the call never reached a server.
func unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// openInProcess opens the node here and serves its socket; when another
// process holds the store, it attaches to that one's socket instead.
func openInProcess(ctx context.Context, home string, o attachOpts, log zerolog.Logger) (*nodeConn, error) {
	sock := filepath.Join(home, node.SocketFile)
	n, c, err := openOrAttach(ctx, home, node.Options{Log: log, Serve: o.serve}, o.wait)
	if err != nil {
		return nil, err
	}
	if c != nil {
		return remoteConn(home, o, c, log), nil
	}
	api, err := localapi.ListenAs(sock, n, log, localapi.Owner{PID: os.Getpid(), Command: o.command})
	if err != nil {
		n.Close()
		return nil, err
	}
	return &nodeConn{Caller: mcp.NodeCaller{Node: n}, Node: n, close: func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = api.Close(sctx)
		os.Remove(sock)
		n.Close()
	}}, nil
}

// openOrAttach opens the node, or, while another process holds the store,
// waits (bounded) for that process's socket and returns a client of it.
// A holder that serves no socket (a command ending, a daemon starting)
// usually lets go within the bound, and the store is then opened here.
func openOrAttach(ctx context.Context, home string, opts node.Options, bound time.Duration) (*node.Node, *localapi.Client, error) {
	sock := filepath.Join(home, node.SocketFile)
	deadline := time.Now().Add(bound)
	for {
		n, err := node.Open(home, opts)
		if err == nil {
			return n, nil, nil
		}
		if !storeLocked(err) {
			return nil, nil, err
		}
		if c, derr := localapi.Dial(sock); derr == nil {
			return nil, c, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, lockedError(home)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func storeLocked(err error) bool {
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// lockedError names the process holding the store (badger writes its pid
// to data/LOCK) and what to do.
func lockedError(home string) error {
	who := "another process"
	if b, err := os.ReadFile(filepath.Join(home, node.DataDir, "LOCK")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			who = fmt.Sprintf("process %d", pid)
		}
	}
	return node.Userf("the node's store (%s) is held by %s, which serves no socket at %s; "+
		"if it is a swarm command, let it finish or stop it, then try again", filepath.Join(home, node.DataDir), who, filepath.Join(home, node.SocketFile))
}

// ensureDaemon returns a client of the daemon of home, starting one when
// no process serves the socket. The lock file makes concurrent starters
// take turns: the first starts the daemon, the others find its socket.
func ensureDaemon(ctx context.Context, home string, bound time.Duration, notice io.Writer, log zerolog.Logger) (*localapi.Client, error) {
	sock := filepath.Join(home, node.SocketFile)
	unlock, err := lockFile(ctx, filepath.Join(home, daemonLockFile), bound+5*time.Second)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c, err := localapi.Dial(sock); err == nil {
		return c, nil
	}
	pid, exited, err := startDaemon(home)
	if err != nil {
		return nil, err
	}
	log.Info().Str("home", home).Int("pid", pid).Msg("started the daemon")
	c, err := waitSocket(ctx, sock, bound, exited)
	if err == nil && notice != nil {
		fmt.Fprintf(notice, "swarm: started the daemon for %s (pid %d, log %s); `swarm stop` ends it\n", home, pid, filepath.Join(home, daemonLogFile))
	}
	return c, err
}

// lockFile takes an exclusive flock on path, waiting at most bound.
func lockFile(ctx context.Context, path string, bound time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(bound)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w (another swarm command is starting the daemon)", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// startDaemon starts `swarm serve` for home, detached: its own session
// (no terminal's hangup or Ctrl-C reaches it), stdin /dev/null, output to
// HOME/daemon.log (0600), the environment it needs (daemonEnv). exited
// yields once it ends.
func startDaemon(home string) (int, <-chan struct{}, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, fmt.Errorf("start the daemon: %w", err)
	}
	logPath := filepath.Join(home, daemonLogFile)
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, fmt.Errorf("start the daemon: %w", err)
	}
	defer lf.Close()
	_ = lf.Chmod(0o600) // an older file may have been made looser
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(exe, "--home", home, "serve")
	cmd.Stdout, cmd.Stderr = lf, lf // stdin nil: /dev/null
	cmd.Dir = home                  // hold no caller's directory
	cmd.Env = append(daemonEnv(os.Environ(), cfg), autostartEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start the daemon (%s): %w", exe, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reaped while this process lives
	return cmd.Process.Pid, exited, nil
}

// waitSocket waits (at most bound) until the socket answers. exited, when
// not nil, is the daemon this command started: if it ends first, the
// socket gets one last chance (it stops when another process won the
// store, and that one may serve by now), then its log is named.
func waitSocket(ctx context.Context, sock string, bound time.Duration, exited <-chan struct{}) (*localapi.Client, error) {
	deadline := time.Now().Add(bound)
	home := filepath.Dir(sock)
	for {
		if c, err := localapi.Dial(sock); err == nil {
			return c, nil
		}
		select {
		case <-exited:
			if c, err := localapi.Dial(sock); err == nil {
				return c, nil
			}
			return nil, fmt.Errorf("the daemon for %s ended before serving %s: see %s", home, sock, filepath.Join(home, daemonLogFile))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			if exited == nil {
				return nil, fmt.Errorf("no process serves %s after %s", sock, bound)
			}
			return nil, fmt.Errorf("the daemon for %s did not serve %s within %s: see %s", home, sock, bound, filepath.Join(home, daemonLogFile))
		}
	}
}

// daemonEnv is the environment an auto-started daemon gets from the
// command that starts it: what its extensions need for this config
// (node.ExtensionEnv: a woken Claude Code session's standard list and the
// wake config's own names, a GitHub token, a webhook secret), SWARM_*
// settings and TLS trust. Nothing else of the caller's environment
// reaches the daemon.
func daemonEnv(base []string, cfg *node.Config) []string {
	names := node.ExtensionEnv(cfg)
	names = append(names, "SWARM_", "SSL_CERT_FILE", "SSL_CERT_DIR")
	var out []string
	for _, kv := range base {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "SWARM_WAKE" || name == noDaemonEnv || name == "SWARM_HOME" || name == autostartEnv {
			continue // a woken session's mark and the opt-out are the caller's; --home is given
		}
		for _, n := range names {
			if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// serveLock is what `swarm serve` holds from its start until its socket
// is up: the start lock, so a command run right after `swarm serve &`
// waits for this daemon rather than starting another. A daemon a command
// started holds nothing: that command holds the lock for it.
func serveLock(ctx context.Context, home string) (func(), error) {
	if _, err := node.LoadConfig(home); err != nil {
		return nil, err // an uninitialised home says so
	}
	if os.Getenv(autostartEnv) != "" {
		return func() {}, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(home, daemonLockFile), socketWait+5*time.Second)
	if err != nil {
		return nil, err
	}
	return sync.OnceFunc(unlock), nil
}

// alreadyServed is `swarm serve`'s answer when another process serves
// the home: who, and how to end it.
func alreadyServed(ctx context.Context, c *localapi.Client, sock string) error {
	if abs, err := filepath.Abs(sock); err == nil {
		sock = abs
	}
	o, err := c.Owner(ctx)
	switch {
	case err != nil:
		return node.Userf("a process already serves %s (%v); `swarm stop` ends a daemon", sock, err)
	case o.Daemon:
		return node.Userf("a daemon already serves this home (pid %d, socket %s); `swarm stop` ends it", o.PID, sock)
	}
	return node.Userf("`swarm %s` (pid %d) runs this home's node in its own process (%s=1) and serves %s; a daemon can start once it ends",
		o.Command, o.PID, noDaemonEnv, sock)
}

// cmdStop asks the daemon to shut down over the local API and waits until
// the store is released, so the next command (or a test's cleanup) finds
// the home free. No daemon is not an error: there is nothing to stop.
func cmdStop(ctx context.Context, g globals, stdout io.Writer) error {
	home, err := filepath.Abs(g.home)
	if err != nil {
		return err
	}
	c, err := localapi.Dial(filepath.Join(home, node.SocketFile))
	if err != nil {
		return stopReport(stdout, g.json, home, 0, "no daemon serves "+home)
	}
	o, err := c.Stop(ctx)
	if err != nil {
		return err
	}
	if err := waitReleased(ctx, home, o.PID, 30*time.Second); err != nil {
		return err
	}
	return stopReport(stdout, g.json, home, o.PID, fmt.Sprintf("stopped the daemon of %s (pid %d)", home, o.PID))
}

func stopReport(w io.Writer, asJSON bool, home string, pid int, text string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"home": home, "stopped": pid != 0, "pid": pid})
	}
	_, err := fmt.Fprintln(w, text)
	return err
}

// waitReleased waits until the daemon pid let go of the store: badger's
// flock on the data directory is free, or another process serves the
// home by now (an open `swarm mcp` starts a daemon again at its next
// call).
func waitReleased(ctx context.Context, home string, pid int, bound time.Duration) error {
	dir := filepath.Join(home, node.DataDir)
	deadline := time.Now().Add(bound)
	for {
		if c, err := localapi.Dial(filepath.Join(home, node.SocketFile)); err == nil {
			if o, err := c.Owner(ctx); err == nil && o.PID != pid {
				return nil
			}
		}
		f, err := os.Open(dir)
		if err != nil {
			return nil // no store at all: nothing holds it
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		f.Close()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon was asked to stop but still holds %s after %s: see %s", dir, bound, filepath.Join(home, daemonLogFile))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
