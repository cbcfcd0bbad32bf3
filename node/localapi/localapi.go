// Package localapi is the node's local face: HTTP/1.1 on a unix socket of
// mode 0600 in the node's home. POST /v1/ops/{name} with the operation's
// arguments as a JSON object runs that operation of package ops; the reply
// is the result as JSON, or {"error": "..."} with 400 for a user's mistake
// and 500 for a fault of the node.
//
// A request may carry the calling command's values of the environment
// variables extensions declared (node.RegisterCallerEnv: its credentials),
// one Swarm-Caller-Env header "NAME=value" each (the socket is the user's
// alone); the operation then uses them rather than the daemon's own. They
// are never logged nor echoed. GET /v1/owner says which process serves
// the socket, and POST /v1/stop asks a daemon to shut down.
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

// CallerEnvHeader carries one of the calling command's declared
// environment variables, as NAME=value.
const CallerEnvHeader = "Swarm-Caller-Env"

// Owner describes the process that serves the socket and owns the store.
type Owner struct {
	PID int `json:"pid"`
	// Daemon: `swarm serve` (auto-started or not); false for a command
	// that runs the node in its own process (SWARM_NO_DAEMON=1), which
	// ends with it and cannot be stopped from outside.
	Daemon  bool   `json:"daemon"`
	Command string `json:"command"` // "serve", "mcp", an operation's name
}

// Server serves the local API.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	stop    chan struct{}
	stopped sync.Once
}

// Listen binds the socket at path (replacing a stale one) with mode 0600,
// for the daemon of this process.
func Listen(path string, n *node.Node, log zerolog.Logger) (*Server, error) {
	return ListenAs(path, n, log, Owner{PID: os.Getpid(), Daemon: true, Command: "serve"})
}

// ListenAs is Listen for the owner o.
func ListenAs(path string, n *node.Node, log zerolog.Logger, o Owner) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("another process already serves %s", path)
	}
	_ = os.Remove(path)
	// Create the socket with no permissions for others from the start.
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("local API: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{ln: ln, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/v1/ops/", Handler(n, log))
	mux.HandleFunc("GET /v1/owner", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, o) })
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) {
		if !o.Daemon {
			reply(w, http.StatusConflict, map[string]string{"error": fmt.Sprintf(
				"no daemon serves this home: `swarm %s` (pid %d) runs the node in its own process and ends with it", o.Command, o.PID)})
			return
		}
		log.Info().Msg("stop asked over the local API")
		reply(w, 200, o)
		s.stopped.Do(func() { close(s.stop) })
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Stopping is closed when a client asked the daemon to stop.
func (s *Server) Stopping() <-chan struct{} { return s.stop }

// Close stops the server and removes the socket. Safe to call twice.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Handler is the local API's HTTP handler.
func Handler(n *node.Node, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ops/{name}", func(w http.ResponseWriter, r *http.Request) {
		var raw map[string]any
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
			reply(w, http.StatusUnsupportedMediaType, map[string]string{"error": "content type must be application/json"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "arguments exceed the 1 MiB limit"})
			return
		}
		if err == nil && !utf8.Valid(body) {
			// encoding/json would quietly turn bad bytes into U+FFFD.
			reply(w, 400, map[string]string{"error": "arguments are not valid UTF-8"})
			return
		}
		if err == nil && len(bytes.TrimSpace(body)) > 0 {
			err = json.Unmarshal(body, &raw)
		}
		if err != nil {
			reply(w, 400, map[string]string{"error": "arguments must be one JSON object: " + err.Error()})
			return
		}
		ctx := node.WithCallerEnv(r.Context(), callerEnv(r.Header))
		res, err := ops.Call(ctx, n, r.PathValue("name"), raw)
		switch {
		case err == nil:
			reply(w, 200, res)
		case node.IsUser(err):
			// The kind travels so the CLI's exit code does not depend
			// on whether a daemon ran the operation.
			reply(w, 400, map[string]string{"error": err.Error(), "kind": string(node.KindOf(err))})
		default:
			log.Error().Err(err).Str("op", r.PathValue("name")).Msg("operation failed")
			reply(w, 500, map[string]string{"error": err.Error()})
		}
	})
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Client calls a daemon's local API.
type Client struct {
	hc *http.Client
	// CallerEnv goes with every call (CallerEnvHeader): the calling
	// command's values of the declared variables (node.CallerEnvFrom),
	// which the operation prefers to the daemon's own.
	CallerEnv map[string]string
}

// Dial connects to the daemon at path, or fails if none answers.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr}}, nil
}

// Call runs an operation on the daemon and returns its JSON result. A
// user's mistake comes back as a *node.UserError.
func (c *Client) Call(ctx context.Context, name string, args map[string]any) (json.RawMessage, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://swarm/v1/ops/"+name, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for name, v := range c.CallerEnv {
		// A header cannot carry a line break: such a value is not sent.
		if !strings.Contains(name, "=") && !strings.ContainsAny(name+v, "\r\n") {
			req.Header.Add(CallerEnvHeader, name+"="+v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		var e struct{ Error, Kind string }
		_ = json.Unmarshal(out, &e)
		if resp.StatusCode == 400 {
			return nil, &node.UserError{Msg: e.Error, Kind: node.Kind(e.Kind)}
		}
		return nil, fmt.Errorf("daemon: %s", e.Error)
	}
	return out, nil
}

// Owner asks which process serves the socket.
func (c *Client) Owner(ctx context.Context) (Owner, error) {
	var o Owner
	err := c.do(ctx, "GET", "/v1/owner", &o)
	return o, err
}

// Stop asks the daemon to shut down; it answers before it does. A node
// run inside a command (not a daemon) refuses with a *node.UserError.
func (c *Client) Stop(ctx context.Context) (Owner, error) {
	var o Owner
	err := c.do(ctx, "POST", "/v1/stop", &o)
	return o, err
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://swarm"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		var e struct{ Error string }
		_ = json.Unmarshal(out, &e)
		if e.Error == "" {
			e.Error = fmt.Sprintf("HTTP %d on %s (a daemon older than this command?)", resp.StatusCode, path)
		}
		if resp.StatusCode/100 == 4 {
			return &node.UserError{Msg: e.Error}
		}
		return fmt.Errorf("daemon: %s", e.Error)
	}
	return json.Unmarshal(out, v)
}

// callerEnv reads the CallerEnvHeader values of a request; names not
// declared are dropped by node.WithCallerEnv.
func callerEnv(h http.Header) map[string]string {
	env := map[string]string{}
	for _, kv := range h.Values(CallerEnvHeader) {
		if name, v, ok := strings.Cut(kv, "="); ok {
			env[name] = v
		}
	}
	return env
}
