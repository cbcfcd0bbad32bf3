package mcp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	swarmmcp "github.com/agent-swarm/agent-swarm/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// TestUnauthorizedConnectionIsClosed: a client without the token gets its
// 401 and then the server closes the connection, so it cannot hold
// kept-alive connections open; a client with the token keeps its own.
func TestUnauthorizedConnectionIsClosed(t *testing.T) {
	token := strings.Repeat("ab", 32)
	srv := swarmmcp.NewHTTPServer(swarmmcp.HTTPHandler(server.NewMCPServer("t", "1"), token))
	if srv.ReadHeaderTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("MCP server without header or idle timeout: %v %v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	// GET /mcp with a token answers 4xx/2xx without closing; with a wrong
	// one it must close.
	for _, tc := range []struct {
		name, auth string
		closed     bool
	}{
		{"no token", "", true},
		{"wrong token", "Bearer " + strings.Repeat("0", 64), true},
		{"right token", "Bearer " + token, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req := "DELETE /mcp HTTP/1.1\r\nHost: x\r\n"
			if tc.auth != "" {
				req += "Authorization: " + tc.auth + "\r\n"
			}
			req += "\r\n"
			br := bufio.NewReader(c)
			for i := 0; i < 2; i++ {
				if _, err := io.WriteString(c, req); err != nil {
					if tc.closed && i == 1 {
						return // closed before the reuse
					}
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if i == 1 && tc.closed {
					if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "reset")) {
						t.Fatalf("reusing the connection after a 401: %v, want EOF", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if tc.closed && (resp.StatusCode != http.StatusUnauthorized || !resp.Close) {
					t.Fatalf("wrong token: %d, Connection: close %v", resp.StatusCode, resp.Close)
				}
				if !tc.closed && (resp.StatusCode == http.StatusUnauthorized || resp.Close) {
					t.Fatalf("right token: %d, closed %v", resp.StatusCode, resp.Close)
				}
			}
		})
	}
}
