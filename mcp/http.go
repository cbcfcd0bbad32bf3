package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"unicode/utf8"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/mark3labs/mcp-go/server"
)

// TokenFile holds the bearer token of the HTTP endpoint, mode 0600.
const TokenFile = "mcp.token"

// LoadOrCreateToken returns the home's MCP bearer token, making one the
// first time.
func LoadOrCreateToken(home string) (string, error) {
	return node.LoadOrCreateToken(filepath.Join(home, TokenFile))
}

// CheckListen refuses a non-loopback address unless allowRemote.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid MCP listen address %q: want host:port", addr)
	}
	if node.LoopbackHost(host) || allowRemote {
		return nil
	}
	return fmt.Errorf("MCP listen address %s is not loopback: the endpoint drives your agent; pass --mcp-allow-remote only behind TLS you trust", addr)
}

// HTTPHandler serves MCP over streamable HTTP at /mcp, behind a bearer
// token and an Origin check (browsers on other sites must not reach it:
// DNS rebinding).
func HTTPHandler(s *server.MCPServer, token string) http.Handler {
	h := server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkOrigin(r.Header.Get("Origin")); err != nil {
			w.Header().Set("Connection", "close")
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if !node.BearerOK(w, r, token) {
			http.Error(w, "missing or wrong bearer token (see mcp.token in the node's home)", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
			if err != nil {
				http.Error(w, "could not read the request: "+err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			if !utf8.Valid(body) {
				// encoding/json would quietly turn bad bytes into U+FFFD
				// and run the tool on text the client never sent.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: the request is not valid UTF-8"}}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// NewHTTPServer is the HTTP server for HTTPHandler (node.LocalHTTPServer:
// a streamable-HTTP GET is a long-lived event stream).
func NewHTTPServer(h http.Handler) *http.Server { return node.LocalHTTPServer(h) }

func checkOrigin(origin string) error {
	if origin == "" {
		return nil // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return errors.New("malformed Origin")
	}
	if node.LoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("origin %s is not allowed", origin)
}
