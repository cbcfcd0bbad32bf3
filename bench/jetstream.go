package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The second baseline is NATS JetStream: a publish stored in a file store
// that syncs every write (sync_interval: always) before it is acked, by a
// server process, from a client process; "stored durably, then acked" in
// one hop where the node makes two. Its program is bench/jetstream, a Go
// module of its own that the bench builds: linked into the swarm binary,
// the NATS server cost every swarm process 5 MB of RSS and 5 ms of CPU at
// start (docs/performance.md).

// JetStreamBinEnv names a prebuilt bench/jetstream binary; without it the
// bench builds one from the source tree, which needs the Go toolchain.
const JetStreamBinEnv = "SWARM_BENCH_JETSTREAM"

// jetStreamBin returns the JetStream program: $SWARM_BENCH_JETSTREAM, or
// one built now from bench/jetstream into the run's temp directory.
func (b *bencher) jetStreamBin(ctx context.Context) (string, error) {
	if p := os.Getenv(JetStreamBinEnv); p != "" {
		return p, nil
	}
	src := jetStreamSource()
	if src == "" {
		return "", fmt.Errorf("the JetStream baseline needs its source (bench/jetstream of agent-swarm) and the Go toolchain: run the bench from the source tree (go run ./cmd/swarm bench) or set %s to a binary built there (cd bench/jetstream && go build)", JetStreamBinEnv)
	}
	fmt.Fprintf(b.stderr, "bench: building the JetStream baseline (%s)\n", src)
	bin := filepath.Join(b.tmp, "bench-jetstream")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the JetStream baseline in %s (or set %s): %v\n%s", src, JetStreamBinEnv, err, out)
	}
	return bin, nil
}

// jetStreamSource finds bench/jetstream: beside this file as it was
// compiled, else under the working directory or one of its parents.
func jetStreamSource() string {
	var dirs []string
	if _, file, _, ok := runtime.Caller(0); ok {
		dirs = append(dirs, filepath.Join(filepath.Dir(file), "jetstream"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, filepath.Join(d, "bench", "jetstream"), filepath.Join(d, "jetstream"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "agent-swarm/bench/jetstream") {
			return d
		}
	}
	return ""
}

// jsPeer drives the JetStream baseline: a server child and a client
// child, which times each publish itself (as the bench times a raw POST
// in its own process) and answers over a pipe.
type jsPeer struct {
	serverPID, clientPID int
	in                   io.WriteCloser
	out                  *bufio.Reader
}

// jetStreamPeer builds (if needed) and starts the JetStream baseline.
func (b *bencher) jetStreamPeer(ctx context.Context, size int) (*jsPeer, error) {
	bin, err := b.jetStreamBin(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.tmp, "jetstream-")
	if err != nil {
		return nil, err
	}
	srv, _, srvOut, err := b.startWithPipes(bin, "server", "--dir", filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	url, err := readLine(bufio.NewReader(srvOut), 15*time.Second)
	if err != nil {
		return nil, fmt.Errorf("JetStream server did not start: %w", err)
	}
	cl, in, clOut, err := b.startWithPipes(bin, "client", "--url", url, "--size", strconv.Itoa(size))
	if err != nil {
		return nil, err
	}
	p := &jsPeer{serverPID: srv.Process.Pid, clientPID: cl.Process.Pid, in: in, out: bufio.NewReader(clOut)}
	if line, err := readLine(p.out, 15*time.Second); err != nil || line != "ready" {
		return nil, fmt.Errorf("JetStream client did not start: %q %v", line, err)
	}
	return p, nil
}

// startWithPipes starts bin as a child of the bench (its own process
// group, stopped with the others) with pipes to its stdin and stdout.
func (b *bencher) startWithPipes(bin string, args ...string) (*exec.Cmd, io.WriteCloser, io.Reader, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	b.mu.Lock()
	b.children = append(b.children, cmd)
	b.mu.Unlock()
	return cmd, in, out, nil
}

// ask sends one command and returns the value of its "ok" answer.
func (p *jsPeer) ask(cmd string, wait time.Duration) (float64, error) {
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return 0, err
	}
	line, err := readLine(p.out, wait)
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(line, "ok ")
	if !ok {
		return 0, errors.New(strings.TrimPrefix(line, "err "))
	}
	return strconv.ParseFloat(v, 64)
}

// publish is one baseline message: published, synced to the file store,
// acked; the time the client measured.
func (p *jsPeer) publish() (time.Duration, error) {
	ns, err := p.ask("pub", 20*time.Second)
	if err != nil {
		return 0, fmt.Errorf("JetStream publish: %w", err)
	}
	return time.Duration(ns), nil
}

// rate publishes n messages, streams in flight, in messages per second.
func (p *jsPeer) rate(n, streams int) (float64, error) {
	r, err := p.ask(fmt.Sprintf("rate %d %d", n, streams), 10*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("JetStream throughput: %w", err)
	}
	return r, nil
}

// close ends the client (its stdin closes); the children are stopped with
// the others.
func (p *jsPeer) close() { p.in.Close() }
