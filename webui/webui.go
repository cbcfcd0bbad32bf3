// Package webui is a local web page over the node: swarms, members with
// presence and key fingerprints, a live message stream, the outbox, wake
// history and the GitHub queue, with actions to send, mute and mark read.
//
// It is one more face over the op table, like the CLI and MCP: the page
// calls POST /v1/ops/{name} (the local API's shape) and the server runs
// that operation through a Caller, the same one `swarm mcp` uses (the
// node in this process, or the daemon's local API). The live stream
// (GET /v1/events, server-sent events) loops on the wait operation.
//
// Security (docs/cli.md, "swarm ui"):
//   - loopback only (CheckListen), and every request must name a loopback
//     Host (a page on another site cannot reach it through DNS rebinding);
//   - every call but the static files needs the bearer token of
//     HOME/ui.token (0600) in an Authorization header. A header, not a
//     cookie: a foreign page's requests carry no header it cannot set,
//     and a cross-origin request with one needs a CORS preflight this
//     server never grants, so there is nothing to forge (CSRF);
//   - the page gets the token from the URL's fragment (#token=...), which
//     the browser never sends to a server nor in a Referer; the script
//     moves it to sessionStorage and clears it from the address bar;
//   - peer text is put in the page with textContent only, and a Content
//     Security Policy allows no inline script: a body holding <script> is
//     text. The token is never logged.
package webui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/rs/zerolog"
)

// Caller runs an operation by name with raw arguments and returns its
// JSON result (mcp.NodeCaller, or a command's connection to the daemon).
type Caller interface {
	Call(ctx context.Context, op string, args map[string]any) (json.RawMessage, error)
}

// TokenFile holds the page's bearer token, mode 0600. It is not the MCP
// token: the page's URL (with its token) lands in a browser's history,
// and that must not hand out the MCP endpoint as well.
const TokenFile = "ui.token"

// AddrFile names the address a daemon serves the page on (swarm ui reads
// it); it holds no secret.
const AddrFile = "ui.addr"

//go:embed static
var static embed.FS

// LoadOrCreateToken returns the home's UI token, making one (32 random
// bytes, hex) the first time.
func LoadOrCreateToken(home string) (string, error) {
	return node.LoadOrCreateToken(filepath.Join(home, TokenFile))
}

// URL is the address to open: the token rides in the fragment.
func URL(addr, token string) string { return "http://" + addr + "/#token=" + token }

// CheckListen refuses an address that is not loopback: the page drives
// the agent.
func CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid UI listen address %q: want 127.0.0.1:PORT", addr)
	}
	if !node.LoopbackHost(host) {
		return fmt.Errorf("UI listen address %s is not loopback: the page drives your agent; use 127.0.0.1:PORT", addr)
	}
	return nil
}

// Handler serves the page and its API over c, behind token.
func Handler(c Caller, token string, log zerolog.Logger) http.Handler {
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	fsrv := http.FileServerFS(files)
	for _, p := range []string{"GET /{$}", "GET /app.js", "GET /app.css"} {
		mux.Handle(p, fsrv)
	}
	api := http.NewServeMux()
	api.HandleFunc("POST /v1/ops/{name}", func(w http.ResponseWriter, r *http.Request) { runOp(w, r, c, log) })
	api.HandleFunc("GET /v1/ops", listOps)
	api.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) { events(w, r, c, log) })
	mux.Handle("/v1/", authed(token, api))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sameHost(r); err != nil {
			w.Header().Set("Connection", "close")
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// sameHost refuses a request whose Host is not loopback (DNS rebinding)
// or whose Origin, when a browser sends one, is not this very server.
func sameHost(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if !node.LoopbackHost(host) {
		return fmt.Errorf("host %q is not allowed: open the page at the address `swarm ui` prints", host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" || u.Host != r.Host {
			return fmt.Errorf("origin %q is not allowed", o)
		}
	}
	return nil
}

// authed lets through requests with the token; the others get 401 and
// a closed connection.
func authed(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !node.BearerOK(w, r, token) {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token: open the address `swarm ui` prints"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// runOp runs one operation of the table, with the local API's rules:
// a JSON object of arguments in, the result or {"error", "kind"} out.
func runOp(w http.ResponseWriter, r *http.Request, c Caller, log zerolog.Logger) {
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
		reply(w, http.StatusUnsupportedMediaType, map[string]string{"error": "content type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		reply(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "arguments exceed the 1 MiB limit"})
		return
	}
	if !utf8.Valid(body) {
		reply(w, 400, map[string]string{"error": "arguments are not valid UTF-8"})
		return
	}
	var raw map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &raw); err != nil {
			reply(w, 400, map[string]string{"error": "arguments must be one JSON object: " + err.Error()})
			return
		}
	}
	name := r.PathValue("name")
	if ops.Find(name) == nil {
		reply(w, 404, map[string]string{"error": fmt.Sprintf("unknown operation %q", name)})
		return
	}
	out, err := c.Call(r.Context(), name, raw)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	case node.IsUser(err):
		reply(w, 400, map[string]string{"error": err.Error(), "kind": string(node.KindOf(err))})
	default:
		log.Error().Err(err).Str("op", name).Msg("ui: operation failed")
		reply(w, 500, map[string]string{"error": err.Error()})
	}
}

// listOps names the operations this binary has, so the page shows the
// panels of the extensions it includes (wake history, GitHub queue).
func listOps(w http.ResponseWriter, r *http.Request) {
	var names []string
	for _, op := range ops.All() {
		names = append(names, op.Name)
	}
	reply(w, 200, names)
}

// events streams new messages as server-sent events ("message", data the
// inbox's JSON of one message) until the client goes. It loops on the
// wait operation from ?after= (the last message the page has), so no
// message falls between the page's first inbox call and the stream. A
// comment every wait keeps proxies and the browser from timing out.
func events(w http.ResponseWriter, r *http.Request, c Caller, log zerolog.Logger) {
	fl, ok := w.(http.Flusher)
	if !ok {
		reply(w, 500, map[string]string{"error": "streaming unsupported"})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	io.WriteString(w, ": stream open\n\n")
	fl.Flush()
	ops.Follow(r.Context(), c.Call, r.URL.Query().Get("after"), 25*time.Second, log.With().Str("component", "ui").Logger(), func(msgs []json.RawMessage) bool {
		for _, m := range msgs {
			// One line of JSON: encoding/json escapes line breaks, so a
			// body cannot end the event or forge another.
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", compact(m))
		}
		if len(msgs) == 0 {
			io.WriteString(w, ": idle\n\n")
		}
		fl.Flush()
		return true
	})
}

func compact(m json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		return []byte("{}")
	}
	return b.Bytes()
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Server is a running page.
type Server struct {
	srv    *http.Server
	cancel context.CancelFunc
	Addr   string // bound address
}

// Serve serves the page for c on addr (loopback; port 0 picks one).
func Serve(addr string, c Caller, token string, log zerolog.Logger) (*Server, error) {
	if err := CheckListen(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("UI listen: %w", err)
	}
	// No WriteTimeout: the event stream is long-lived; it ends with the
	// base context, which Close cancels.
	base, cancel := context.WithCancel(context.Background())
	srv := node.LocalHTTPServer(Handler(c, token, log))
	srv.BaseContext = func(net.Listener) context.Context { return base }
	go func() { _ = srv.Serve(ln) }()
	return &Server{srv: srv, cancel: cancel, Addr: ln.Addr().String()}, nil
}

// Close stops the server, ending open event streams.
func (s *Server) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	return err
}
