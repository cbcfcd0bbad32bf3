package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

const testSecret = "tok_secret_0123456789"

func init() {
	node.RegisterCallerEnv("TEST_CALLER_TOKEN")
	// An operation that reports which caller variables it was given, and
	// fails naming none of their values.
	ops.Register(&ops.Op{Name: "test_caller_env", CLI: "test caller-env", Summary: "test only", Local: true,
		Run: func(ctx context.Context, n *node.Node, a ops.Args) (any, error) {
			seen := map[string]string{}
			for _, name := range []string{"TEST_CALLER_TOKEN", "TEST_UNDECLARED"} {
				if v := node.CallerEnv(ctx, name); v != "" {
					seen[name] = v
				}
			}
			return seen, nil
		},
		Text: func(json.RawMessage) (string, error) { return "", nil }})
}

// TestCallerEnv: a client's declared variables reach the operation that
// runs in the daemon, undeclared ones and empty values do not, a value
// with a line break is not sent, and no value shows in the daemon's log.
func TestCallerEnv(t *testing.T) {
	home := t.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: "env.test", Listen: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	n, err := node.Open(home, node.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sock := filepath.Join(home, node.SocketFile)
	srv, err := Listen(sock, n, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	for _, c := range []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{"declared", map[string]string{"TEST_CALLER_TOKEN": testSecret}, map[string]string{"TEST_CALLER_TOKEN": testSecret}},
		{"undeclared dropped", map[string]string{"TEST_CALLER_TOKEN": testSecret, "TEST_UNDECLARED": "x"}, map[string]string{"TEST_CALLER_TOKEN": testSecret}},
		{"none", nil, map[string]string{}},
		{"empty", map[string]string{"TEST_CALLER_TOKEN": "  "}, map[string]string{}},
		{"line break not sent", map[string]string{"TEST_CALLER_TOKEN": "a\r\nX-Evil: 1"}, map[string]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := Dial(sock)
			if err != nil {
				t.Fatal(err)
			}
			cl.CallerEnv = c.env
			out, err := cl.Call(context.Background(), "test_caller_env", nil)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) || got["TEST_CALLER_TOKEN"] != c.want["TEST_CALLER_TOKEN"] {
				t.Fatalf("the operation saw %v, want %v", got, c.want)
			}
		})
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Fatalf("a caller's value is in the log:\n%s", logs.String())
	}
}

// TestCallerEnvFrom: a command sends the declared variables it has set,
// trimmed, and nothing else of its environment.
func TestCallerEnvFrom(t *testing.T) {
	env := map[string]string{"TEST_CALLER_TOKEN": " v ", "HOME": "/h"}
	got := node.CallerEnvFrom(func(k string) string { return env[k] })
	if len(got) != 1 || got["TEST_CALLER_TOKEN"] != "v" {
		t.Fatalf("CallerEnvFrom = %v", got)
	}
}
