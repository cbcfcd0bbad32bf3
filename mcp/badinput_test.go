package mcp_test

// Bad input on the local faces, as a spec: the local API (HTTP on the
// node's unix socket, POST /v1/ops/{name}) and the MCP tools. Every row is
// one mistake or attack; it names the status (local API) or the tool
// error (MCP) and a substring of the message that names the problem, and
// checks that the node's visible state did not change.
//
// The local API rows live here rather than in package node because
// node/localapi imports node. The peer API is covered in
// node/badinput_test.go, the CLI in cmd/swarm/testdata/script/badinput.txtar.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	swarmmcp "github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"
)

// faceSnapshot renders what a user of n can see (inbox with muted
// messages, swarms, members without presence, status counters) as JSON.
func faceSnapshot(t *testing.T, n *node.Node) string {
	t.Helper()
	inbox, err := n.Inbox(node.InboxArgs{IncludeMuted: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.List()
	if err != nil {
		t.Fatal(err)
	}
	type member struct {
		Domain, Fingerprint, Addr    string
		Master, Self, Leaving, Muted bool
	}
	members := map[string][]member{}
	for _, s := range list {
		ms, err := n.Members(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			members[s.ID] = append(members[s.ID], member{m.Domain, m.Fingerprint, m.Addr, m.Master, m.Self, m.Leaving, m.Muted})
		}
	}
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{
		"domain": n.Domain(), "inbox": inbox, "swarms": list, "members": members,
		"status": map[string]any{"swarms": st.Swarms, "unread": st.Unread, "outbox": st.Outbox, "state": st.State, "line": st.Status},
	}, "", " ")
	return string(b)
}

// faceFixture: m is the master of "team"; k joined it with a one-use
// invite; j, the node under test, is in a swarm of its own ("mine") and
// holds bad tokens for "team".
type faceFixture struct {
	m, k, j                                           *node.Node
	usedUp, expired, revoked, forged, dissolved, good string
}

func newFaceFixture(t *testing.T) *faceFixture {
	f := &faceFixture{m: newNode(t, "m.test"), k: newNode(t, "k.test"), j: newNode(t, "j.test")}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.m.Create(node.CreateArgs{Name: "team"})
	must(err)
	inv, err := f.m.Invite(node.InviteArgs{Swarm: "team", Uses: 1})
	must(err)
	f.usedUp = inv.Token
	_, err = f.k.Join(ctx, f.usedUp)
	must(err)
	inv, err = f.m.Invite(node.InviteArgs{Swarm: "team", TTL: time.Millisecond})
	must(err)
	f.expired = inv.Token
	inv, err = f.m.Invite(node.InviteArgs{Swarm: "team"})
	must(err)
	f.revoked = inv.Token
	_, err = f.m.InviteRevoke(inv.ID)
	must(err)
	inv, err = f.m.Invite(node.InviteArgs{Swarm: "team"})
	must(err)
	f.good = inv.Token
	f.forged = f.good[:len(f.good)-3] + "AAA"
	if f.forged == f.good {
		f.forged = f.good[:len(f.good)-3] + "BBB"
	}
	// A token of a swarm its master has since dissolved.
	_, err = f.m.Create(node.CreateArgs{Name: "gone"})
	must(err)
	inv, err = f.m.Invite(node.InviteArgs{Swarm: "gone"})
	must(err)
	f.dissolved = inv.Token
	_, err = f.m.Leave("gone")
	must(err)
	_, err = f.j.Create(node.CreateArgs{Name: "mine"})
	must(err)
	eventually(t, "m's outbox drains", func() bool { st, _ := f.m.Status(); return st.Outbox == 0 })
	return f
}

// faceCase is one row: a local API request or an MCP tool call.
type faceCase struct {
	name string
	// local API
	method, path, ctype string // defaults: POST, application/json
	body                string
	status              int
	// MCP
	tool     string
	args     map[string]any
	protoErr bool // a JSON-RPC error rather than a tool error
	// both
	want string
}

func localClient(t *testing.T, sock string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func TestBadInputFaces(t *testing.T) {
	f := newFaceFixture(t)
	long := strings.Repeat("a", 300) + ".test"
	nested := strings.Repeat("[", 100000)
	bigBody := strings.Repeat("x", 64<<10+1)
	op := func(name string, args map[string]any) (string, string) {
		b, _ := json.Marshal(args)
		return "/v1/ops/" + name, string(b)
	}
	local := func(name, path, body string, status int, want string) faceCase {
		return faceCase{name: name, path: path, body: body, status: status, want: want}
	}
	opCase := func(name, opName string, args map[string]any, want string) faceCase {
		p, b := op(opName, args)
		return faceCase{name: name, path: p, body: b, status: 400, want: want}
	}

	// The same mistakes reach the node through both faces.
	shared := []struct {
		name, op string
		args     map[string]any
		want     string
	}{
		{"missing required argument", "create", map[string]any{}, `missing required argument "name"`},
		{"unknown argument", "create", map[string]any{"name": "x", "colour": "blue"}, "unknown argument colour"},
		{"number as a word", "invite", map[string]any{"swarm": "mine", "uses": "many"}, "want a whole number"},
		{"fractional number", "invite", map[string]any{"swarm": "mine", "uses": 2.5}, "want a whole number"},
		{"object where a string goes", "create", map[string]any{"name": map[string]any{"$ne": ""}}, "want a string"},
		{"uses beyond the limit", "invite", map[string]any{"swarm": "mine", "uses": 5000}, "outside [1, 1000]"},
		{"ttl not a duration", "invite", map[string]any{"swarm": "mine", "ttl": "forever"}, "want a duration"},
		{"negative ttl", "invite", map[string]any{"swarm": "mine", "ttl": "-1h"}, "want a duration"},
		{"ttl beyond 30 days", "invite", map[string]any{"swarm": "mine", "ttl": "10000h"}, "outside (0, 720h]"},
		{"swarm name with control characters", "create", map[string]any{"name": "team\x07\x1b[2J"}, "control or unprintable character"},
		{"swarm name with a newline", "create", map[string]any{"name": "a\nb"}, "control or unprintable character"},
		{"swarm name of 65 characters", "create", map[string]any{"name": strings.Repeat("n", 65)}, "want 1 to 64 characters"},
		{"swarm name of 100 KiB", "create", map[string]any{"name": strings.Repeat("n", 100<<10)}, "want 1 to 64 characters"},
		{"empty swarm name", "create", map[string]any{"name": ""}, "want 1 to 64 characters"},
		{"path trick ../x as a swarm name", "create", map[string]any{"name": "../x"}, "no slashes or dot names"},
		{"path trick a/b as a swarm name", "create", map[string]any{"name": "a/b"}, "no slashes or dot names"},
		{"path trick .. as a swarm name", "create", map[string]any{"name": ".."}, "no slashes or dot names"},
		{`path trick a\b as a swarm name`, "create", map[string]any{"name": `a\b`}, "no slashes or dot names"},
		{"swarm name that looks like a swarm id", "create", map[string]any{"name": "abcdefghijklmnopqrstuvwx"}, "looks like a swarm id"},
		{"swarm name with outer spaces", "create", map[string]any{"name": " team "}, "no leading or trailing spaces"},
		{"path trick %2e%2e names no swarm", "send", map[string]any{"swarm": "%2e%2e", "body": "x"}, `unknown swarm "%2e%2e"`},
		{"path trick ../mine names no swarm", "members", map[string]any{"swarm": "../mine"}, `unknown swarm "../mine"`},
		{"unknown priority", "send", map[string]any{"swarm": "mine", "body": "x", "priority": "extreme"}, "not one of low, normal, high, urgent"},
		{"oversize body (64 KiB + 1)", "send", map[string]any{"swarm": "mine", "body": bigBody}, "body of 65537 bytes exceeds the limit of 65536"},
		{"NUL in the body", "send", map[string]any{"swarm": "mine", "body": "a\x00b"}, "control character U+0000"},
		{"terminal escape in the body", "send", map[string]any{"swarm": "mine", "body": "\x1b]0;pwned\x07"}, "control character U+001B"},
		{"empty body", "send", map[string]any{"swarm": "mine", "body": ""}, "body is empty"},
		{"very long recipient domain", "send", map[string]any{"swarm": "mine", "body": "x", "to": long}, "invalid agent name"},
		{"very long domain to mute", "mute", map[string]any{"agent": long}, "invalid agent name"},
		{"domain with control characters to mute", "mute", map[string]any{"agent": "a.test\r\nx"}, "invalid agent name"},
		{"thread that is neither a name nor a message id", "send", map[string]any{"swarm": "mine", "body": "x", "thread": "../../etc"}, `invalid thread "../../etc"`},
		{"delivery of a path trick", "delivery", map[string]any{"id": "../../data"}, "invalid id"},
		{"read of a path trick", "read", map[string]any{"ids": []any{"../x"}}, "invalid id"},
		{"deeply nested list", "read", map[string]any{"ids": nestList(500)}, "want a list of strings"},
		{"presence state unknown", "presence", map[string]any{"state": "root"}, "not one of active, busy, idle, away"},
		{"presence status with control characters", "presence", map[string]any{"state": "busy", "status": "\x1b[31mred"}, "control character"},
		{"presence status too long", "presence", map[string]any{"state": "busy", "status": strings.Repeat("s", 300)}, "exceeds the limit of 200"},
		{"join: not a token", "join", map[string]any{"token": "hello"}, "not an invite token"},
		{"join: forged token", "join", map[string]any{"token": f.forged}, "bad signature"},
		{"join: expired token", "join", map[string]any{"token": f.expired}, "expired"},
		{"join: over-used token", "join", map[string]any{"token": f.usedUp}, "used up (1 of 1)"},
		{"join: revoked token", "join", map[string]any{"token": f.revoked}, "revoked"},
		{"join: token of a dissolved swarm", "join", map[string]any{"token": f.dissolved}, "not in the swarm of the invite"},
		{"join: truncated token", "join", map[string]any{"token": f.good[:len(f.good)/2]}, "truncated"},
		{"join: token with garbled base64", "join", map[string]any{"token": "swarm1.!!!!.????"}, "corrupted"},
		{"join: very long token", "join", map[string]any{"token": "swarm1." + strings.Repeat("A", 10000)}, "too long"},
		{"revoke: not an invite id", "invite_revoke", map[string]any{"invite": "not-an-id"}, "invalid id"},
		{"revoke: an invite this node never issued", "invite_revoke", map[string]any{"invite": "01a210cc-e7e9-7190-aed8-0edc1875a521"}, "no invite"},
		{"kick of an agent that is not a member", "kick", map[string]any{"swarm": "mine", "agent": "m.test"}, "not a member"},
	}

	t.Run("local", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "s.sock")
		srv, err := localapi.Listen(sock, f.j, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close(context.Background()) })
		hc := localClient(t, sock)
		p, createBody := op("create", map[string]any{"name": "x"})
		cases := []faceCase{
			local("unknown operation", "/v1/ops/frobnicate", `{}`, 400, `unknown operation "frobnicate"`),
			local("path trick in the operation name", "/v1/ops/..%2fstatus", `{}`, 400, `unknown operation "../status"`),
			local("unknown endpoint", "/v1/nope", `{}`, 404, "404 page not found"),
			local("unknown API version", "/v2/ops/status", `{}`, 404, "404 page not found"),
			{name: "GET on an operation", method: "GET", path: "/v1/ops/status", status: 405, want: "Method Not Allowed"},
			{name: "DELETE on an operation", method: "DELETE", path: "/v1/ops/leave", status: 405, want: "Method Not Allowed"},
			local("malformed JSON", p, `{"name":`, 400, "arguments must be one JSON object"),
			local("truncated body", p, createBody[:len(createBody)-3], 400, "arguments must be one JSON object"),
			local("JSON array instead of an object", p, `["x"]`, 400, "arguments must be one JSON object"),
			local("JSON string instead of an object", p, `"x"`, 400, "arguments must be one JSON object"),
			local("trailing data", p, createBody+` {"name":"y"}`, 400, "arguments must be one JSON object"),
			local("deeply nested JSON (100000 '[')", p, nested, 400, "arguments must be one JSON object"),
			local("deeply nested JSON in an argument", p, `{"name":`+nested, 400, "arguments must be one JSON object"),
			local("body over 1 MiB", p, `{"name":"`+strings.Repeat("x", 2<<20)+`"}`, 413, "exceed the 1 MiB limit"),
			{name: "form body under a form content type", path: p, ctype: "application/x-www-form-urlencoded", body: "name=x",
				status: 415, want: "content type must be application/json"},
			{name: "wrong content type on a valid JSON body", path: p, ctype: "text/plain", body: createBody, status: 415, want: "application/json"},
			{name: "invalid UTF-8 in an argument", path: p, body: "{\"name\":\"bad \xff\xfe\"}", status: 400, want: "not valid UTF-8"},
			{name: "invalid UTF-8 in a message body", path: "/v1/ops/send", body: "{\"swarm\":\"mine\",\"body\":\"\xc3\x28\"}", status: 400, want: "not valid UTF-8"},
		}
		for _, s := range shared {
			cases = append(cases, opCase(s.name, s.op, s.args, s.want))
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := faceSnapshot(t, f.j) + faceSnapshot(t, f.m)
				method := tc.method
				if method == "" {
					method = "POST"
				}
				req, err := http.NewRequest(method, "http://swarm"+tc.path, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				ct := tc.ctype
				if ct == "" {
					ct = "application/json"
				}
				req.Header.Set("Content-Type", ct)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, b)
				}
				msg := string(b)
				var e struct{ Error string }
				if json.Unmarshal(b, &e) == nil && e.Error != "" {
					msg = e.Error
				} else if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
					t.Errorf("error reply %.300s has no error field", b)
				}
				if !strings.Contains(msg, tc.want) {
					t.Errorf("error %.300q does not name the problem (want %q)", msg, tc.want)
				}
				if after := faceSnapshot(t, f.j) + faceSnapshot(t, f.m); after != before {
					t.Errorf("the node changed:\nbefore: %s\nafter: %s", before, after)
				}
			})
		}
		if len(cases) < 60 {
			t.Errorf("%d local API rows", len(cases))
		}
	})

	t.Run("mcp", func(t *testing.T) {
		c := mcpClient(t, f.j)
		cases := []faceCase{
			{name: "unknown tool", tool: "swarm_frobnicate", args: map[string]any{}, protoErr: true, want: "swarm_frobnicate"},
			{name: "operation name without the swarm_ prefix", tool: "create", args: map[string]any{"name": "x"}, protoErr: true, want: "create"},
			{name: "path trick in the tool name", tool: "swarm_../status", args: map[string]any{}, protoErr: true, want: "swarm_../status"},
		}
		for _, s := range shared {
			cases = append(cases, faceCase{name: s.name, tool: "swarm_" + s.op, args: s.args, want: s.want})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := faceSnapshot(t, f.j) + faceSnapshot(t, f.m)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = tc.tool, tc.args
				res, err := c.CallTool(ctx, req)
				switch {
				case tc.protoErr:
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("want a protocol error naming %q, got %v %+v", tc.want, err, res)
					}
				case err != nil:
					t.Fatalf("protocol error %v, want a tool error the model can read", err)
				case !res.IsError:
					t.Fatalf("want a tool error containing %q, got success: %.300s", tc.want, text(res))
				case !strings.Contains(text(res), tc.want):
					t.Fatalf("tool error %.300q does not name the problem (want %q)", text(res), tc.want)
				}
				if after := faceSnapshot(t, f.j) + faceSnapshot(t, f.m); after != before {
					t.Errorf("the node changed:\nbefore: %s\nafter: %s", before, after)
				}
			})
		}
	})

	// Raw JSON-RPC over the streamable HTTP endpoint: what mcp-go's client
	// cannot send (it re-encodes strings as valid UTF-8 and never sends
	// broken JSON).
	t.Run("mcp-raw", func(t *testing.T) {
		token, err := swarmmcp.LoadOrCreateToken(f.j.Home())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(swarmmcp.HTTPHandler(swarmmcp.NewServer(swarmmcp.NodeCaller{Node: f.j}), token))
		t.Cleanup(srv.Close)
		session := ""
		rpc := func(t *testing.T, body string) (int, string) {
			t.Helper()
			r, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			r.Header.Set("Authorization", "Bearer "+token)
			if session != "" {
				r.Header.Set("Mcp-Session-Id", session)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				session = id
			}
			return resp.StatusCode, string(b)
		}
		if code, out := rpc(t, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`); code != 200 {
			t.Fatalf("initialize: %d %s", code, out)
		}
		rpc(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		call := func(tool, args string) string {
			return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
		}
		cases := []struct {
			name, body, want string
		}{
			{name: "malformed JSON-RPC", body: `{"jsonrpc":"2.0","id":2,"method":`, want: "-32700"},
			{name: "deeply nested JSON-RPC (100000 '[')", body: nested, want: "-32700"},
			{name: "unknown method", body: `{"jsonrpc":"2.0","id":3,"method":"tools/execute","params":{}}`, want: "-32601"},
			{name: "arguments not an object", body: call("swarm_create", `["x"]`), want: `missing required argument \"name\"`},
			{name: "invalid UTF-8 in a tool argument", body: call("swarm_create", "{\"name\":\"bad \xff\xfe\"}"), want: "not valid UTF-8"},
			{name: "invalid UTF-8 in a message body", body: call("swarm_send", "{\"swarm\":\"mine\",\"body\":\"\xc3\x28\"}"), want: "not valid UTF-8"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := faceSnapshot(t, f.j) + faceSnapshot(t, f.m)
				code, out := rpc(t, tc.body)
				if !strings.Contains(out, tc.want) {
					t.Errorf("reply %d %.300s does not name the problem (want %q)", code, out, tc.want)
				}
				if after := faceSnapshot(t, f.j) + faceSnapshot(t, f.m); after != before {
					t.Errorf("the node changed:\nbefore: %s\nafter: %s", before, after)
				}
			})
		}
	})
}

// nestList is [[[...["x"]...]]] n deep.
func nestList(n int) []any {
	v := []any{"x"}
	for i := 0; i < n; i++ {
		v = []any{v}
	}
	return v
}
