package mcp

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// GuardStdio wraps the stdio pair of an MCP server so a request line that
// is not valid UTF-8 never reaches it: encoding/json would turn the bad
// bytes into U+FFFD and run the tool on text the client never sent. Such a
// line is answered here with a JSON-RPC parse error (when it has an id)
// and dropped. The returned writer serialises the server's writes with
// those answers; give both to the server's Listen.
func GuardStdio(in io.Reader, out io.Writer) (io.Reader, io.Writer) {
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() {
		br := bufio.NewReader(in)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				if utf8.Valid(line) {
					if _, werr := pw.Write(line); werr != nil {
						return
					}
				} else {
					w.refuse(line)
				}
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr, w
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// refuse answers a request that is not valid UTF-8, if it has an id.
func (l *lockedWriter) refuse(line []byte) {
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal([]byte(strings.ToValidUTF8(string(line), "?")), &req) != nil || len(req.ID) == 0 || string(req.ID) == "null" {
		return // a notification or garbage: nothing to answer
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID,
		"error": map[string]any{"code": -32700, "message": "parse error: the request is not valid UTF-8"}})
	l.Write(append(b, '\n'))
}
