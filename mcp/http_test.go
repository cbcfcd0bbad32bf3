package mcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	swarmmcp "github.com/agent-swarm/agent-swarm/mcp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestHTTPEndpoint(t *testing.T) {
	n := newNode(t, "h.test")
	token, err := swarmmcp.LoadOrCreateToken(n.Home())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := swarmmcp.LoadOrCreateToken(n.Home())
	if again != token {
		t.Fatal("the token changed between calls; clients configured with it would break")
	}
	srv := httptest.NewServer(swarmmcp.HTTPHandler(swarmmcp.NewServer(swarmmcp.NodeCaller{Node: n}), token))
	t.Cleanup(srv.Close)

	c, err := client.NewStreamableHttpClient(srv.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "test", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "swarm_status"
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("status over HTTP: %v %v", err, res)
	}
	if res.StructuredContent.(map[string]any)["domain"] != "h.test" {
		t.Fatalf("status = %v", res.StructuredContent)
	}

	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, http.StatusUnauthorized},
		{"token without Bearer", map[string]string{"Authorization": token}, http.StatusUnauthorized},
		{"foreign origin", map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example"}, http.StatusForbidden},
		{"loopback origin", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://localhost:6274"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(init))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{"192.0.2.7:8080", false, false},
		{"0.0.0.0:8080", true, true},
		{"no-port", false, false},
	} {
		if err := swarmmcp.CheckListen(tc.addr, tc.remote); (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", tc.addr, tc.remote, err, tc.ok)
		}
	}
}
