package localapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

// FuzzLocalAPI sends arbitrary argument bodies to every operation that
// does not reach the network (nor wait, which blocks by design). Whatever the bytes, the answer is JSON, a
// mistake is a 4xx naming it, and nothing panics or faults (5xx).
func FuzzLocalAPI(f *testing.F) {
	var names []string
	for _, op := range ops.All() {
		if !op.Network && op.Name != "wait" { // wait blocks by design
			names = append(names, op.Name)
		}
	}
	for _, seed := range []string{`{}`, `{"name":"team"}`, `{"swarm":"team","body":"hi"}`, `{"ids":["x"],"all":true}`,
		`{"for":"-1h","agent":"a"}`, `{"limit":1e308}`, `{"on":"keyword"}`, `{"quiet":"99:99-00:00"}`, "{\"name\":\"\xff\"}", `[`, ``} {
		f.Add(uint8(len(seed)), []byte(seed))
	}
	home := f.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: "fz.test", Listen: "127.0.0.1:1"}); err != nil {
		f.Fatal(err)
	}
	n, err := node.Open(home, node.Options{Log: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	h := Handler(n, zerolog.Nop())
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		name := names[int(which)%len(names)]
		r := httptest.NewRequest("POST", "/v1/ops/"+name, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", name, body, w.Code, w.Body)
		}
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s: answer is not JSON: %q", name, w.Body)
		}
		if w.Code != 200 {
			if m, ok := v.(map[string]any); !ok || fmt.Sprint(m["error"]) == "" {
				t.Fatalf("%s: error without a message: %s", name, w.Body)
			}
		}
	})
}
