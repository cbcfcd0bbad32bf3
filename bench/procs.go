package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
)

// bencher is one run: its temp directory (every home and certificate),
// the swarm binary, and the children it started, which close stops.
type bencher struct {
	tmp      string
	self     string // the swarm binary every child runs
	stderr   io.Writer
	mu       sync.Mutex
	children []*exec.Cmd
}

// newBencher finds the swarm binary (SWARM_BENCH_BIN, which tests set to
// one they built, else this process's own executable: `swarm bench`) and
// makes the run's temp directory.
func newBencher(stderr io.Writer) (*bencher, error) {
	self := os.Getenv("SWARM_BENCH_BIN")
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "swarm-bench-")
	if err != nil {
		return nil, err
	}
	return &bencher{tmp: tmp, self: self, stderr: stderr}, nil
}

// close stops every child still running and removes the temp directory.
func (b *bencher) close() {
	b.mu.Lock()
	cs := b.children
	b.children = nil
	b.mu.Unlock()
	stopChildren(cs)
	os.RemoveAll(b.tmp)
}

// stop stops some children (their process groups) and forgets them.
func (b *bencher) stop(cs ...*exec.Cmd) {
	b.mu.Lock()
	keep := b.children[:0]
	for _, c := range b.children {
		if !slices.Contains(cs, c) {
			keep = append(keep, c)
		}
	}
	b.children = keep
	b.mu.Unlock()
	stopChildren(cs)
}

// stopChildren sends SIGTERM to each child's process group, then SIGKILL
// to any still running after 5 s, and reaps them all.
func stopChildren(cs []*exec.Cmd) {
	for _, c := range cs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}()
	}
	wg.Wait()
}

// noDaemon is the environment of every child: a command the bench runs
// (`swarm join`, `swarm send`, `swarm mcp`) must not start a daemon of
// its own for a home without one. The bench starts every daemon it
// measures itself, and stops them; one started behind its back would be
// left running, and would hold the store of a home the bench is about to
// serve.
const noDaemon = "SWARM_NO_DAEMON=1"

// command is the swarm binary with args, in the children's environment.
func (b *bencher) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.self, args...)
	cmd.Env = append(os.Environ(), noDaemon)
	return cmd
}

// start runs the swarm binary with args as a child in its own process group.
// The child gets SIGTERM if the bench process dies without cleaning up.
func (b *bencher) start(args ...string) (*exec.Cmd, io.Reader, error) {
	cmd := b.command(context.Background(), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	b.children = append(b.children, cmd)
	b.mu.Unlock()
	return cmd, out, nil
}

// nodeHome makes a node home with a free port.
func (b *bencher) nodeHome(name string) (string, error) {
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	home := filepath.Join(b.tmp, name)
	if _, err := node.Init(home, node.InitOptions{Domain: name + ".bench", Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		return "", err
	}
	cfg, _ := node.LoadConfig(home)
	cfg.JoinRate, cfg.JoinBurst, cfg.RateLimit = 1000, 1000, 100000
	cfg.RetryMin, cfg.RetryMax = node.Duration(20*time.Millisecond), node.Duration(500*time.Millisecond)
	return home, node.SaveConfig(home, cfg)
}

// serveNode runs `swarm serve` on home as a child and waits until ready.
func (b *bencher) serveNode(ctx context.Context, home string) (int, error) {
	cmd, err := b.startServe(home)
	if err != nil {
		return 0, err
	}
	return cmd.Process.Pid, b.waitReady(ctx, home)
}

// startServe starts `swarm serve` on home as a child.
func (b *bencher) startServe(home string) (*exec.Cmd, error) {
	os.Remove(filepath.Join(home, node.ReadyFile))
	cmd, _, err := b.start("--home", home, "--log-level", "error", "serve")
	return cmd, err
}

// waitReady waits (up to 15 s) for the daemon on home to write its ready file.
func (b *bencher) waitReady(ctx context.Context, home string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(filepath.Join(home, node.ReadyFile)); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("node %s did not become ready", home)
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func rssMB(pid int) (float64, error) { return statusMB(pid, "VmRSS:") }

// statusMB reads one memory line of /proc/PID/status in MB: VmRSS (all
// resident), RssAnon (heap and stacks) or RssFile (mapped files, here
// badger's tables and logs: page cache the kernel can reclaim).
func statusMB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s for %d", field, pid)
}
