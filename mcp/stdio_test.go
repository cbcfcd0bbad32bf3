package mcp

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestGuardStdio: valid lines pass through unchanged; a request that is
// not valid UTF-8 is answered with a parse error naming the problem and
// never reaches the server; a bad notification is dropped silently.
func TestGuardStdio(t *testing.T) {
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"swarm_create\",\"arguments\":{\"name\":\"bad \xff\xfe\"}}}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":{\"v\":\"\xc3\x28\"}}",
		`{"jsonrpc":"2.0","id":"two","method":"ping"}`,
	}, "\n") + "\n"
	var out syncBuf
	r, w := GuardStdio(strings.NewReader(in), &out)
	passed, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}` + "\n" + `{"jsonrpc":"2.0","id":"two","method":"ping"}` + "\n"
	if string(passed) != want {
		t.Fatalf("passed to the server:\n%s\nwant:\n%s", passed, want)
	}
	got := out.String()
	if !strings.Contains(got, `"id":7`) || !strings.Contains(got, "-32700") || !strings.Contains(got, "not valid UTF-8") || strings.Count(got, "\n") != 1 {
		t.Fatalf("answer written: %q", got)
	}
	w.Write([]byte("{}\n")) // the server's own writes go through too
	if !strings.HasSuffix(out.String(), "{}\n") {
		t.Fatal("server write lost")
	}
}
