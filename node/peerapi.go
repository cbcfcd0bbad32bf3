package node

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"golang.org/x/time/rate"
)

func decodePub(k string) (ed25519.PublicKey, error) { return identity.DecodeKey(k) }

// AgentCard is served at /.well-known/swarm-agent.
type AgentCard struct {
	Domain      string   `json:"domain"`
	Key         string   `json:"key"`
	Fingerprint string   `json:"fingerprint"`
	Addr        string   `json:"addr"`
	Pin         string   `json:"pin,omitempty"`
	Versions    []string `json:"versions"`
}

func (n *Node) peerMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/swarm-agent", n.handleCard)
	mux.HandleFunc("POST /swarm/v1/messages", n.handleMessages)
	mux.HandleFunc("POST /swarm/v1/join", n.handleJoinHTTP)
	mux.HandleFunc("POST /swarm/v1/ping", n.handlePing)
	mux.HandleFunc("GET /swarm/v1/swarms/{id}/log", n.handleLog)
	mux.HandleFunc("GET /healthz", n.handleHealth)    // health.go
	mux.HandleFunc("GET /healthz/live", n.handleLive) // health.go
	ext := n.extRoutes()
	for pattern, h := range ext {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethod(r.URL.Path, ext); allow != "" {
			w.Header().Set("Allow", allow)
			writeErr(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+" is not allowed: use "+allow)
			return
		}
		writeErr(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// allowedMethod is the method a known endpoint takes ("" when the path
// is not one), so a wrong method gets 405 rather than 404. ext are the
// extensions' routes ("POST /path").
func allowedMethod(path string, ext map[string]http.Handler) string {
	switch path {
	case "/.well-known/swarm-agent", "/healthz", "/healthz/live":
		return "GET"
	case "/swarm/v1/messages", "/swarm/v1/join", "/swarm/v1/ping":
		return "POST"
	}
	for pattern := range ext {
		if method, p, ok := strings.Cut(pattern, " "); ok && p == path {
			return method
		}
	}
	if rest, ok := strings.CutPrefix(path, "/swarm/v1/swarms/"); ok && strings.HasSuffix(rest, "/log") && strings.Count(rest, "/") == 1 {
		return "GET"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// bodyTimeout bounds how long a request body may take to arrive (4 MiB at
// about 1 Mbit/s); a slow peer cannot pin a handler longer.
const bodyTimeout = 30 * time.Second

// readBody reads a request body of at most limit bytes, taking each
// chunk from the node's body budget as it arrives (bodybudget.go); the
// caller calls done once it no longer holds the body.
func (n *Node) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, done func(), ok bool) {
	// A missing type is taken as JSON (some HTTP/3 clients cannot set
	// headers); a wrong one is refused. Bodies are verified either way.
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); ct != "" && strings.TrimSpace(mt) != "application/json" {
		writeErr(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return nil, nil, false
	}
	if r.ContentLength > limit {
		writeErr(w, http.StatusRequestEntityTooLarge, "body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes")
		return nil, nil, false
	}
	// A body that trickles is cut: the TCP server has a ReadTimeout,
	// HTTP/3 has none, so closing the body bounds both.
	t := time.AfterFunc(bodyTimeout, func() { r.Body.Close() })
	defer t.Stop()
	addr, taken := n.remoteIP(r), int64(0)
	done = func() { n.bodies.give(addr, taken) }
	in := http.MaxBytesReader(w, r.Body, limit)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			// Doubling (from 32 KiB) keeps copies few; the budget is
			// charged for the capacity, which is what memory holds.
			grow := max(int64(cap(buf)), 32<<10)
			if cap(buf) == 0 && r.ContentLength > 0 {
				grow = r.ContentLength + 1 // the whole body, and room to see its end
			}
			grow = min(grow, limit+1-int64(cap(buf)))
			if grow <= 0 {
				grow = 1 // one byte more lets MaxBytesReader report the excess
			}
			if !n.bodies.take(addr, grow) {
				done()
				w.Header().Set("Retry-After", "1")
				writeErr(w, http.StatusServiceUnavailable, "busy: too many request bodies in flight; retry later")
				return nil, nil, false
			}
			taken += grow
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := in.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, done, true
		}
		if err != nil {
			done()
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeErr(w, http.StatusRequestEntityTooLarge, "body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes")
			} else {
				writeErr(w, http.StatusBadRequest, "could not read the body: "+err.Error())
			}
			return nil, nil, false
		}
	}
}

func (n *Node) handleCard(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, AgentCard{Domain: n.cfg.Domain, Key: n.id.KeyString(), Fingerprint: identity.Fingerprint(n.id.Public()),
		Addr: n.cfg.Advertise, Pin: n.pin, Versions: []string{"swarm/v1"}})
}

func (n *Node) handleMessages(w http.ResponseWriter, r *http.Request) {
	body, done, ok := n.readBody(w, r, wire.MaxBatchBytes)
	if !ok {
		return
	}
	defer done() // the body and what is decoded from it are held until the reply
	b, err := wire.DecodeBatch(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, e := range b.Envelopes {
		if len(e.Payload) > wire.MaxPayload {
			writeErr(w, http.StatusRequestEntityTooLarge, "an envelope exceeds the payload limit")
			return
		}
	}
	writeJSON(w, 200, wire.BatchReply{Results: n.receive(r.Context(), b.Envelopes, n.remoteIP(r))})
}

// remoteIP is the address a request came from. Behind a proxy the TCP
// peer is the proxy on loopback, and the true peer is the last
// X-Forwarded-For entry (the one the proxy itself wrote; Angie's site
// overwrites the header). The header is believed only when the node is
// configured as behind a proxy and the connection comes from loopback:
// anyone else could write it (DESIGN §1).
func (n *Node) remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !n.cfg.BehindProxy {
		return host
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return host
	}
	parts := strings.Split(xff[len(xff)-1], ",")
	last := strings.TrimSpace(parts[len(parts)-1])
	if ip := net.ParseIP(last); ip != nil {
		return ip.String()
	}
	return host
}

func (n *Node) handleJoinHTTP(w http.ResponseWriter, r *http.Request) {
	jr, jb := n.cfg.JoinRate, n.cfg.JoinBurst
	if jr <= 0 {
		jr = 0.5
	}
	if jb <= 0 {
		jb = 5
	}
	if !n.limiter(&n.joinLim, n.remoteIP(r), rate.Limit(jr), jb).Allow() {
		w.Header().Set("Retry-After", "10")
		writeErr(w, http.StatusTooManyRequests, "too many join attempts; retry later")
		return
	}
	body, done, ok := n.readBody(w, r, 64<<10)
	if !ok {
		return
	}
	defer done()
	j, req, err := wire.DecodeJoin(body, n.now(), n.window)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	reply, err := n.handleJoin(j, req)
	if err != nil {
		code := http.StatusInternalServerError
		if IsUser(err) {
			code = http.StatusForbidden
		} else {
			n.log.Error().Err(err).Msg("join failed")
		}
		writeErr(w, code, err.Error())
		return
	}
	n.log.Info().Str("agent", req.Member.Domain).Str("swarm", req.Swarm).Msg("member joined")
	writeJSON(w, 200, reply)
}

func (n *Node) handlePing(w http.ResponseWriter, r *http.Request) {
	body, done, ok := n.readBody(w, r, 64<<10)
	if !ok {
		return
	}
	defer done()
	sg, err := wire.DecodeSigned(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := n.verifyPresence(sg)
	if err != nil {
		writeErr(w, http.StatusForbidden, err.Error())
		return
	}
	n.pres.put(sg.KID, p, 0, n.now())
	n.heard.hear(sg.KID, n.now())
	n.pres.from(sg.KID, n.remoteIP(r))
	writeJSON(w, 200, n.presencePayload(p.From))
}

func (n *Node) handleLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if wire.ValidSwarmID(id) != nil {
		writeErr(w, http.StatusBadRequest, "invalid swarm id")
		return
	}
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "after must be a record index")
		return
	}
	sg, err := wire.DecodeAuth(r.Header.Get("Swarm-Auth"))
	if err != nil {
		writeErr(w, http.StatusUnauthorized, err.Error())
		return
	}
	sw, key, err := wire.SplitKeyHint(sg.KID)
	if err != nil || sw != id {
		writeErr(w, http.StatusUnauthorized, "Swarm-Auth names another swarm")
		return
	}
	n.mu.Lock()
	s, ok := n.swarms[id]
	var domain string
	var recs []wire.Signed
	if ok {
		domain = s.state.KeyOwner(key)
		recs = s.state.After(after)
	}
	n.mu.Unlock()
	if !ok || domain == "" {
		writeErr(w, http.StatusForbidden, "not a member of this swarm")
		return
	}
	pub, _ := identity.DecodeKey(key)
	if err := sg.Verify(wire.PurposeRequest, pub); err != nil {
		writeErr(w, http.StatusUnauthorized, "bad signature")
		return
	}
	req, err := wire.ParseRequest(sg.Payload, "GET", r.URL.Path, n.now(), n.window)
	if err != nil || req.From != domain {
		writeErr(w, http.StatusUnauthorized, "request authentication failed")
		return
	}
	if len(recs) > wire.MaxRecordsBatch {
		recs = recs[:wire.MaxRecordsBatch]
	}
	writeJSON(w, 200, wire.JoinReply{Records: recs})
}
