package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/metrics"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/webui"
	"github.com/rs/zerolog"
)

// checkWebFlags refuses --metrics and --ui addresses that are not
// loopback before the daemon starts (exit 2).
func checkWebFlags(f flagMap) error {
	if a, ok := f["metrics"]; ok {
		if err := metrics.CheckListen(a); err != nil {
			return usagef("serve --metrics: %v", err)
		}
	}
	if a, ok := f["ui"]; ok {
		if err := webui.CheckListen(a); err != nil {
			return usagef("serve --ui: %v", err)
		}
	}
	return nil
}

// serveWeb starts what `swarm serve --metrics/--ui` asked for on the
// daemon's node; stop ends both.
func serveWeb(home string, f flagMap, n *node.Node, log zerolog.Logger) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if a := f["metrics"]; a != "" {
		bound, s, err := metrics.Serve(a, n, log)
		if err != nil {
			return nil, err
		}
		stops = append(stops, s)
		log.Info().Str("addr", "http://"+bound+"/metrics").Msg("Prometheus metrics")
	}
	if a := f["ui"]; a != "" {
		srv, err := startUI(home, a, mcp.NodeCaller{Node: n}, log)
		if err != nil {
			stop()
			return nil, err
		}
		addrFile := filepath.Join(home, webui.AddrFile)
		_ = os.WriteFile(addrFile, []byte(srv.Addr+"\n"), 0o600)
		stops = append(stops, func() { os.Remove(addrFile); srv.Close() })
	}
	return stop, nil
}

// startUI serves the page for c; the token is read or made, never logged.
func startUI(home, addr string, c webui.Caller, log zerolog.Logger) (*webui.Server, error) {
	token, err := webui.LoadOrCreateToken(home)
	if err != nil {
		return nil, err
	}
	srv, err := webui.Serve(addr, c, token, log)
	if err != nil {
		return nil, err
	}
	log.Info().Str("addr", "http://"+srv.Addr+"/").Msg("web page (swarm ui prints its address with the token)")
	return srv, nil
}

// cmdUI prints (and with --open opens) the page's address with its token.
// When the daemon serves the page (serve --ui) that is all; otherwise
// this command serves it on --listen, over the daemon's local API (it
// starts the daemon if none runs), until interrupted.
func cmdUI(ctx context.Context, g globals, f flagMap, stdout, stderr io.Writer) error {
	if a, ok := f["listen"]; ok {
		if err := webui.CheckListen(a); err != nil {
			return usagef("ui --listen: %v", err)
		}
	}
	if _, err := node.LoadConfig(g.home); err != nil {
		return err
	}
	token, err := webui.LoadOrCreateToken(g.home)
	if err != nil {
		return err
	}
	if addr := servedUI(g.home); addr != "" && f["listen"] == "" {
		return showURL(g.home, stdout, stderr, webui.URL(addr, token), f["open"] == "true")
	}
	log, closeLog, err := g.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	conn, err := attach(ctx, g, attachOpts{command: "ui", serve: true, notice: stderr}, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	listen := f["listen"]
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	srv, err := startUI(g.home, listen, conn.Caller, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := showURL(g.home, stdout, stderr, webui.URL(srv.Addr, token), f["open"] == "true"); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "swarm: serving the page until interrupted (Ctrl-C)")
	<-ctx.Done()
	return nil
}

// servedUI is the address a daemon serves the page on, if it answers.
func servedUI(home string) string {
	b, err := os.ReadFile(filepath.Join(home, webui.AddrFile))
	if err != nil {
		return ""
	}
	addr := strings.TrimSpace(string(b))
	if webui.CheckListen(addr) != nil {
		return ""
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/app.css")
	if err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return ""
	}
	return addr
}

// showURL prints the address; with open it also asks the desktop to
// open it (a failure there is a note: the address is printed).
func showURL(home string, stdout, stderr io.Writer, url string, open bool) error {
	if _, err := fmt.Fprintln(stdout, url); err != nil {
		return err
	}
	if !open {
		return nil
	}
	// The browser is handed a 0600 file that sends it on, not the
	// address itself: a command line is visible to every user (ps).
	page := filepath.Join(home, "ui-open.html")
	html := `<!doctype html><meta http-equiv="refresh" content="0;url=` + url + `"><title>swarm</title>`
	if err := os.WriteFile(page, []byte(html), 0o600); err != nil {
		return err
	}
	bin := "xdg-open"
	if runtime.GOOS == "darwin" {
		bin = "open"
	}
	if err := exec.Command(bin, page).Start(); err != nil {
		fmt.Fprintf(stderr, "swarm: note: could not open a browser (%v); open the address above\n", err)
	}
	return nil
}
