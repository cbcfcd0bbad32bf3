package testclients

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeMessagesAPI stands in for Anthropic's POST /v1/messages, which
// cannot be reached here. It answers as the real API does (SSE events
// message_start … message_stop, or one JSON message when stream is off):
// a request that offers tool toolName and has no tool result yet gets a
// tool_use of it with input; once the tool result is in the conversation
// it ends the turn with a short text. Other requests (titles, quota
// checks) get a plain text answer.
type fakeMessagesAPI struct {
	toolName string
	input    map[string]any

	mu       sync.Mutex
	requests []map[string]any
	results  []string // tool_result contents seen
}

func (f *fakeMessagesAPI) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeMessagesAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || !strings.HasPrefix(r.URL.Path, "/v1/messages") {
		http.Error(w, `{"type":"error","error":{"type":"not_found_error","message":"not found"}}`, 404)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/count_tokens") {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":10}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}`, 400)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	offered := false
	if tools, ok := req["tools"].([]any); ok {
		for _, t := range tools {
			if m, ok := t.(map[string]any); ok && m["name"] == f.toolName {
				offered = true
			}
		}
	}
	result := lastToolResult(req)
	if result != "" {
		f.results = append(f.results, result)
	}
	f.mu.Unlock()

	stream, _ := req["stream"].(bool)
	switch {
	case offered && result == "":
		f.reply(w, stream, "tool_use", map[string]any{"type": "tool_use", "id": "toolu_01swarm", "name": f.toolName, "input": f.input})
	default:
		f.reply(w, stream, "end_turn", map[string]any{"type": "text", "text": "Done."})
	}
}

// lastToolResult returns the text of a tool_result in the last user turn.
func lastToolResult(req map[string]any) string {
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		return ""
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	content, _ := last["content"].([]any)
	for _, c := range content {
		m, _ := c.(map[string]any)
		if m["type"] != "tool_result" {
			continue
		}
		b, _ := json.Marshal(m["content"])
		return string(b)
	}
	return ""
}

func (f *fakeMessagesAPI) reply(w http.ResponseWriter, stream bool, stop string, block map[string]any) {
	msg := map[string]any{"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake",
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 10, "output_tokens": 1}}
	if !stream {
		msg["content"] = []any{block}
		msg["stop_reason"] = stop
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(msg)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	ev := func(name string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		if fl != nil {
			fl.Flush()
		}
	}
	msg["content"] = []any{}
	ev("message_start", map[string]any{"type": "message_start", "message": msg})
	start := map[string]any{}
	for k, v := range block {
		start[k] = v
	}
	var delta map[string]any
	if block["type"] == "tool_use" {
		start["input"] = map[string]any{}
		in, _ := json.Marshal(block["input"])
		delta = map[string]any{"type": "input_json_delta", "partial_json": string(in)}
	} else {
		start["text"] = ""
		delta = map[string]any{"type": "text_delta", "text": block["text"]}
	}
	ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": start})
	ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": delta})
	ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 5}})
	ev("message_stop", map[string]any{"type": "message_stop"})
}
