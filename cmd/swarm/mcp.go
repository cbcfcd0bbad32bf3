package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"
)

// cmdMCP speaks MCP on stdio. It attaches to the node's owner over the
// local API, starting the daemon when none serves this home; with
// SWARM_NO_DAEMON=1 it runs the node in this process instead (serving the
// peer API, so peers can deliver while the session lasts, and the local
// socket, so other commands attach, but running no wakes: those are the
// daemon's alone, under its cooldown and budget, and must not start
// inside a live session or die with it). Logs go to stderr or
// --log-file: stdout carries MCP.
func cmdMCP(ctx context.Context, g globals, f flagMap, stdin io.Reader, stdout, stderr io.Writer) error {
	opts := mcp.Options{Channel: f["channel"] == "true"}
	log, closeLog, err := g.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	conn, err := attach(ctx, g, attachOpts{command: "mcp", serve: true}, log) // in-process: not the daemon, no wakes
	if err != nil {
		return err
	}
	defer conn.Close()
	caller := conn.Caller
	if conn.Node != nil {
		log.Info().Str("addr", conn.Node.Addr()).Msg("mcp: running the node in-process")
	} else {
		log.Info().Msg("mcp: attached to the node's owner")
	}
	ms := mcp.NewServerWith(caller, opts)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go mcp.Watch(wctx, ms, caller, opts, log)
	lctx := ctx
	if opts.Channel {
		// Claude Code accepts channel notifications only on connections
		// of MCP 2025-11-25 or older: offer no newer version.
		lctx = server.WithSupportedProtocolVersions(ctx, mcp.ChannelVersions)
	}
	in, out := mcp.GuardStdio(stdin, stdout)
	err = server.NewStdioServer(ms).Listen(lctx, in, out)
	if err == context.Canceled || ctx.Err() != nil {
		return nil
	}
	return err
}

// serveMCPHTTP serves MCP over streamable HTTP for the daemon's node.
func serveMCPHTTP(home, addr string, n *node.Node, log zerolog.Logger) (func(), error) {
	token, err := mcp.LoadOrCreateToken(home)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MCP listen: %w", err)
	}
	caller := mcp.NodeCaller{Node: n}
	ms := mcp.NewServer(caller)
	srv := mcp.NewHTTPServer(mcp.HTTPHandler(ms, token))
	wctx, stopWatch := context.WithCancel(context.Background())
	go mcp.Watch(wctx, ms, caller, mcp.Options{}, log)
	go func() { _ = srv.Serve(ln) }()
	log.Info().Str("addr", "http://"+ln.Addr().String()+"/mcp").Msg("MCP over streamable HTTP")
	return func() {
		stopWatch()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
