package node

// Bad input on the peer API, as a spec: every row is one thing a peer may
// send that the node must refuse. Each row says which endpoint it hits,
// what it sends, the HTTP status (or, for POST /swarm/v1/messages, the
// per-envelope verdict) and a substring of the error that names the
// problem. Every row also checks that the node's store is unchanged: a
// snapshot of the receiving nodes' visible state (inbox, swarms, members,
// status counters, invites, seen IDs) before and after must be equal.
//
// The local API and MCP faces are covered in mcp/badinput_test.go (package
// node cannot import node/localapi: it imports node), the CLI in
// cmd/swarm/testdata/script/badinput.txtar.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/google/uuid"
	"github.com/quic-go/quic-go/http3"
)

// snapshot renders what a user of n can see, plus the invites it issued
// and the size of its seen-ID set and membership logs, as JSON. Presence
// (heartbeats, round trips) changes by itself and is left out.
func snapshot(t *testing.T, n *Node) string {
	t.Helper()
	type member struct {
		Domain, Fingerprint, Addr    string
		Master, Self, Leaving, Muted bool
	}
	inbox := must[[]InboxMessage](t)(n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000}))
	list := must[[]SwarmInfo](t)(n.List())
	members := map[string][]member{}
	for _, s := range list {
		for _, m := range must[[]MemberInfo](t)(n.Members(s.ID)) {
			members[s.ID] = append(members[s.ID], member{m.Domain, m.Fingerprint, m.Addr, m.Master, m.Self, m.Leaving, m.Muted})
		}
	}
	st := must[Status](t)(n.Status())
	invites := map[string]inviteRecord{}
	counts := map[string]int{}
	err := n.st.View(func(tx *store.Tx) error {
		if err := tx.Scan([]byte("v/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var r inviteRecord
			err := dec(&r)
			invites[string(k)] = r
			return true, err
		}); err != nil {
			return err
		}
		for _, p := range []string{"s/", "l/", "i/", "a/", "w/"} {
			if err := tx.Scan([]byte(p), nil, func([]byte, func(any) error) (bool, error) { counts[p]++; return true, nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(map[string]any{
		"domain": n.Domain(), "inbox": inbox, "swarms": list, "members": members,
		"status":  map[string]any{"swarms": st.Swarms, "unread": st.Unread, "outbox": st.Outbox, "key": st.Key},
		"invites": invites, "keys": counts,
	}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawReq is one request as any peer could send it.
type rawReq struct {
	to      *Node // default: the fixture's receiver b
	method  string
	path    string
	ctype   string // "" is application/json; "-" sends no Content-Type
	hdr     http.Header
	body    []byte
	hideLen bool // send the body with unknown length (no Content-Length)
}

// badCase is one row of the table.
type badCase struct {
	name    string
	surface string             // the endpoint it exercises
	prep    func(t *testing.T) // runs before the "before" snapshot
	req     func(t *testing.T) rawReq
	do      func(t *testing.T) (int, []byte) // instead of req, for rows that need their own client
	status  int                              // HTTP status wanted; -1: the stream ends without one
	verdict string                           // POST /messages with 200: every envelope's verdict
	retry   bool                             // ... and whether it says "retry later"
	want    string                           // substring of the error, or of every envelope's reason
	after   func(t *testing.T)               // further checks after the snapshot comparison
	slow    bool                             // takes long: runs in parallel at the end
}

type badFixture struct {
	a, b, c, d, x *Node
	team, other   string // swarm IDs: a's "team" (a, b, d; c kicked) and x's own "team"
	aOther        string // a's second swarm "other"
	h3, h2        *http.Client
	h3slow        *http.Client // no client timeout

	queued                         wire.Signed // c's envelope, signed before c was kicked
	usedUp, expired, revoked       string      // tokens of a
	forged, forSomeone, otherSwarm string
	kickedOld, xToken, fresh       string
	replay                         wire.Signed
	floodSeen                      wire.Signed
}

// pinTLS verifies a node's self-signed certificate by its pin, as the
// node's own client does (DESIGN §2): verification is never skipped, only
// handed to VerifyConnection.
func pinTLS(pins ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !slices.Contains(pins, transport.Pin(cs.PeerCertificates[0])) {
				return errors.New("certificate does not match a pin")
			}
			return nil
		},
	}
}

func newBadFixture(t *testing.T) *badFixture {
	f := &badFixture{}
	f.a = scNode(t, "a.test")
	// The receiver allows 2 envelopes/s per sender (burst 4), so a
	// flooding member hits the limit in a few envelopes.
	bHome := scHome(t, "b.test")
	cfg := must[*Config](t)(LoadConfig(bHome))
	cfg.RateLimit = 2
	if err := SaveConfig(bHome, cfg); err != nil {
		t.Fatal(err)
	}
	f.b = scOpen(t, bHome)
	f.c, f.d, f.x = scNode(t, "c.test"), scNode(t, "d.test"), scNode(t, "x.test")
	ctx := context.Background()

	f.team = must[SwarmInfo](t)(f.a.Create(CreateArgs{Name: "team"})).ID
	f.aOther = must[SwarmInfo](t)(f.a.Create(CreateArgs{Name: "other"})).ID
	f.other = must[SwarmInfo](t)(f.x.Create(CreateArgs{Name: "team"})).ID
	must[SwarmInfo](t)(f.b.Join(ctx, must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team"})).Token))
	f.kickedOld = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team", Uses: 5})).Token
	must[SwarmInfo](t)(f.c.Join(ctx, f.kickedOld))
	f.usedUp = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team", Uses: 1})).Token
	must[SwarmInfo](t)(f.d.Join(ctx, f.usedUp))
	scWait(t, "b sees every member", func() bool { return len(must[[]MemberInfo](t)(f.b.Members("team"))) == 4 })

	f.queued = envelopeFrom(t, f.c, "sent before the kick")
	must[SwarmInfo](t)(f.a.Kick("team", "c.test"))
	scWait(t, "b sees c gone", func() bool { return len(must[[]MemberInfo](t)(f.b.Members("team"))) == 3 })
	scWait(t, "d sees c gone", func() bool { return len(must[[]MemberInfo](t)(f.d.Members("team"))) == 3 })
	scWait(t, "c learns it was kicked", func() bool { return must[[]SwarmInfo](t)(f.c.List())[0].Left })

	f.expired = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team", TTL: 50 * time.Millisecond})).Token
	rv := must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team"}))
	must[InviteInfo](t)(f.a.InviteRevoke(rv.ID))
	f.revoked = rv.Token
	f.forged = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team"})).Token
	f.forged = f.forged[:len(f.forged)-3] + flip(f.forged[len(f.forged)-3:])
	f.forSomeone = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team", Invitee: "someone.test"})).Token
	f.otherSwarm = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "other"})).Token
	f.xToken = must[InviteInfo](t)(f.x.Invite(InviteArgs{Swarm: "team"})).Token
	f.fresh = must[InviteInfo](t)(f.a.Invite(InviteArgs{Swarm: "team", Uses: 100})).Token
	time.Sleep(100 * time.Millisecond) // the short invite expires
	for _, n := range []*Node{f.a, f.b, f.c, f.d} {
		scWait(t, n.Domain()+"'s outbox drains", func() bool { return must[Status](t)(n.Status()).Outbox == 0 })
	}

	tlsConf := pinTLS(f.a.pin, f.b.pin)
	f.h3 = &http.Client{Timeout: 20 * time.Second, Transport: &http3.Transport{TLSClientConfig: tlsConf}}
	f.h3slow = &http.Client{Transport: f.h3.Transport}
	f.h2 = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}}
	t.Cleanup(func() {
		f.h3.Transport.(*http3.Transport).Close()
		f.h2.CloseIdleConnections()
	})
	return f
}

// send makes one request over HTTP/3 and returns the status and body.
func (f *badFixture) send(t *testing.T, hc *http.Client, r rawReq) (int, []byte) {
	t.Helper()
	if r.to == nil {
		r.to = f.b
	}
	if r.method == "" {
		r.method = "POST"
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.hideLen {
			body = io.MultiReader(body)
		}
	}
	req, err := http.NewRequest(r.method, "https://"+r.to.Addr()+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.hdr {
		req.Header[k] = v
	}
	switch r.ctype {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", r.ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the reply: %v", r.method, r.path, err)
	}
	return resp.StatusCode, b
}

// msg is a valid message from `from` to the team; rows break one thing.
func (f *badFixture) msg(from *Node) wire.Message {
	now := time.Now()
	return wire.Message{V: wire.Version, ID: uuid.Must(uuid.NewV7()).String(), Swarm: f.team, From: from.Domain(), To: wire.ToAll,
		Type: wire.TypeMessage, Created: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Seq: 1, Body: "bad input"}
}

// env signs a message as signer, under a key hint naming signer's key.
func (f *badFixture) env(signer *Node, mod func(*wire.Message)) wire.Signed {
	m := f.msg(signer)
	if mod != nil {
		mod(&m)
	}
	b, _ := json.Marshal(m)
	return wire.Sign(wire.PurposeEnvelope, wire.KeyHint(f.team, signer.id.KeyString()), signer.id.Key, b)
}

// envBytes signs edited payload bytes of a valid message from signer.
func (f *badFixture) envBytes(signer *Node, edit func([]byte) []byte) wire.Signed {
	b, _ := json.Marshal(f.msg(signer))
	b = edit(b)
	return wire.Sign(wire.PurposeEnvelope, wire.KeyHint(f.team, signer.id.KeyString()), signer.id.Key, b)
}

func batch(envs ...wire.Signed) rawReq {
	b, _ := json.Marshal(wire.Batch{Envelopes: envs})
	return rawReq{path: "/swarm/v1/messages", body: b}
}

func msgBody(body string) rawReq { return rawReq{path: "/swarm/v1/messages", body: []byte(body)} }

// join is POST /swarm/v1/join to the master a, as joiner, with token.
func (f *badFixture) join(joiner *Node, token string, mod func(*wire.JoinRequest), edit func(*wire.Signed)) rawReq {
	req := wire.JoinRequest{V: wire.Version, Swarm: f.team, Invite: uuid.NewString(), Member: joiner.self(), Time: time.Now().UnixMilli()}
	if inv, _, err := wire.ParseToken(token, time.Time{}); err == nil {
		req.Swarm, req.Invite = inv.Swarm, inv.ID
	}
	if mod != nil {
		mod(&req)
	}
	sg, _ := wire.SignJSON(wire.PurposeJoin, joiner.id.KeyString(), joiner.id.Key, req)
	if edit != nil {
		edit(&sg)
	}
	b, _ := json.Marshal(wire.Join{Token: token, Request: sg})
	return rawReq{to: f.a, path: "/swarm/v1/join", body: b}
}

func (f *badFixture) logPath(swarm string) string { return "/swarm/v1/swarms/" + swarm + "/log" }

// logAuth is a Swarm-Auth header signed by signer for GET path.
func (f *badFixture) logAuth(signer *Node, hintSwarm string, mod func(*wire.Request), edit func(*wire.Signed)) string {
	r := wire.Request{V: wire.Version, From: signer.Domain(), Method: "GET", Path: f.logPath(f.team), Time: time.Now().UnixMilli()}
	if mod != nil {
		mod(&r)
	}
	sg, _ := wire.SignJSON(wire.PurposeRequest, wire.KeyHint(hintSwarm, signer.id.KeyString()), signer.id.Key, r)
	if edit != nil {
		edit(&sg)
	}
	return wire.EncodeAuth(sg)
}

func (f *badFixture) logReq(path, auth string) rawReq {
	h := http.Header{}
	if auth != "" {
		h.Set("Swarm-Auth", auth)
	}
	return rawReq{method: "GET", path: path, hdr: h, ctype: "-"}
}

// ping is POST /swarm/v1/ping to b, signed by signer.
func (f *badFixture) ping(signer *Node, mod func(*wire.Presence), edit func(*wire.Signed)) rawReq {
	p := wire.Presence{V: wire.Version, From: signer.Domain(), To: "b.test", State: "active", Time: time.Now().UnixMilli(), Nonce: uuid.NewString()}
	if mod != nil {
		mod(&p)
	}
	sg, _ := wire.SignJSON(wire.PurposePresence, signer.id.KeyString(), signer.id.Key, p)
	if edit != nil {
		edit(&sg)
	}
	b, _ := json.Marshal(sg)
	return rawReq{path: "/swarm/v1/ping", body: b}
}

// waitTokens waits until n's per-sender rate limiter holds k tokens for
// sender, so a row that needs sender's envelopes through is not throttled
// by the rows before it.
func waitTokens(t *testing.T, n, sender *Node, k float64) {
	t.Helper()
	scWait(t, fmt.Sprintf("%s may send %v envelopes to %s", sender.Domain(), k, n.Domain()), func() bool {
		l, ok := n.limits.Load(sender.id.KeyString())
		return !ok || l.Tokens() >= k
	})
}

// trickle sends a body one byte every 500 ms and reports what the server
// did within limit: the status, or 0 if it still held the request open.
func (f *badFixture) trickle(t *testing.T, hc *http.Client, limit time.Duration) (int, []byte) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = pw.Write([]byte(`{"envelopes":[`))
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-tk.C:
				if _, err := pw.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+f.b.Addr()+"/swarm/v1/messages", pr)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := hc.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			// The server cut the stream: bounded, though without a status.
			return -1, []byte(r.err.Error())
		}
		return r.code, r.body
	case <-time.After(limit):
		return 0, nil
	}
}

func TestBadInput(t *testing.T) {
	f := newBadFixture(t)
	a, b, c, d, x := f.a, f.b, f.c, f.d, f.x
	long := strings.Repeat("a", 300) + ".test"
	nested := strings.Repeat("[", 100000)
	now := time.Now
	bigBody := strings.Repeat("x", wire.MaxBody+1)
	bigPayload := func() wire.Signed { // over the 96 KiB payload limit
		return f.envBytes(a, func(p []byte) []byte {
			return bytes.Replace(p, []byte(`"bad input"`), []byte(`"`+strings.Repeat("x", wire.MaxPayload)+`"`), 1)
		})
	}
	nearLimit := func() wire.Signed { // just under it, body too long
		return f.envBytes(a, func(p []byte) []byte {
			return bytes.Replace(p, []byte(`"bad input"`), []byte(`"`+strings.Repeat("x", 90<<10)+`"`), 1)
		})
	}
	manyBig := func() rawReq {
		envs := make([]wire.Signed, 50)
		for i := range envs {
			envs[i] = nearLimit()
		}
		return batch(envs...)
	}
	goodAuth := func() string { return f.logAuth(b, f.team, nil, nil) }
	flipSig := func(s *wire.Signed) { s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 0xff }

	cases := []badCase{
		// ---- POST /swarm/v1/messages: per-envelope verdicts ----
		{name: "forged signature", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			flipSig(&e)
			return batch(e)
		}, status: 200, verdict: wire.Rejected, want: "bad signature"},
		{name: "payload altered after signing", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			e.Payload = bytes.Replace(e.Payload, []byte("bad input"), []byte("bad inpuT"), 1)
			return batch(e)
		}, status: 200, verdict: wire.Rejected, want: "bad signature"},
		{name: "signature by another member under the victim's key hint", surface: "messages", req: func(t *testing.T) rawReq {
			m := f.msg(a)
			p, _ := json.Marshal(m)
			return batch(wire.Sign(wire.PurposeEnvelope, wire.KeyHint(f.team, a.id.KeyString()), d.id.Key, p))
		}, status: 200, verdict: wire.Rejected, want: "bad signature"},
		{name: "impersonation: member signs with its own key, claims another's name", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(d, func(m *wire.Message) { m.From = "a.test" }))
		}, status: 200, verdict: wire.Rejected, want: "does not match the signing key"},
		{name: "impersonation of the receiver itself", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(d, func(m *wire.Message) { m.From = "b.test" }))
		}, status: 200, verdict: wire.Rejected, want: "does not match the signing key"},
		{name: "signature for another purpose (record) replayed as an envelope", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			return batch(wire.Sign(wire.PurposeRecord, e.KID, a.id.Key, e.Payload))
		}, status: 200, verdict: wire.Rejected, want: "bad signature"},
		{name: "signature of the wrong length", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			e.Sig = e.Sig[:10]
			return batch(e)
		}, status: 200, verdict: wire.Rejected, want: "bad signature"},
		{name: "replay: an accepted envelope sent again", surface: "messages", prep: func(t *testing.T) {
			waitTokens(t, b, a, 2) // a duplicate is charged to the sender's rate too
			f.replay = f.env(a, func(m *wire.Message) { m.Body = "replayed once" })
			code, body := f.send(t, f.h3, batch(f.replay))
			if code != 200 || !strings.Contains(string(body), wire.Accepted) {
				t.Fatalf("first delivery: %d %s", code, body)
			}
		}, req: func(t *testing.T) rawReq { return batch(f.replay) }, status: 200, verdict: wire.Duplicate,
			after: func(t *testing.T) {
				if !has(t, b, "replayed once") { // bodies fails on a second copy
					t.Fatal("the replayed message is not stored")
				}
			}},
		{name: "replay: the same envelope twice in one batch", surface: "messages", prep: func(t *testing.T) { waitTokens(t, b, a, 2) },
			req: func(t *testing.T) rawReq { return batch(f.replay, f.replay) }, status: 200, verdict: wire.Duplicate},
		{name: "expired timestamp", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) {
				m.Created, m.Expires = now().Add(-2*time.Hour).UnixMilli(), now().Add(-time.Hour).UnixMilli()
			}))
		}, status: 200, verdict: wire.Rejected, want: "expired"},
		{name: "future timestamp beyond the clock skew", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) {
				m.Created, m.Expires = now().Add(time.Hour).UnixMilli(), now().Add(2*time.Hour).UnixMilli()
			}))
		}, status: 200, verdict: wire.Rejected, want: "in the future"},
		{name: "lifetime longer than a week", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Expires = now().Add(8 * 24 * time.Hour).UnixMilli() }))
		}, status: 200, verdict: wire.Rejected, want: "lifetime"},
		{name: "expires before created", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Expires = m.Created - 1; m.Created = now().Add(time.Minute).UnixMilli() }))
		}, status: 200, verdict: wire.Rejected, want: "expired"},
		{name: "non-member sender (outsider's key, our swarm)", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(x, nil))
		}, status: 200, verdict: wire.Rejected, retry: true, want: "unknown signing key"},
		{name: "non-member claiming a member's name", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(x, func(m *wire.Message) { m.From = "a.test" }))
		}, status: 200, verdict: wire.Rejected, retry: true, want: "unknown signing key"},
		{name: "swarm the receiver is not in", surface: "messages", req: func(t *testing.T) rawReq {
			m := f.msg(x)
			m.Swarm = f.other
			p, _ := json.Marshal(m)
			return batch(wire.Sign(wire.PurposeEnvelope, wire.KeyHint(f.other, x.id.KeyString()), x.id.Key, p))
		}, status: 200, verdict: wire.Rejected, want: "not in swarm"},
		{name: "kicked member, envelope signed before the kick", surface: "messages",
			req: func(t *testing.T) rawReq { return batch(f.queued) }, status: 200, verdict: wire.Rejected, want: "not a member (kick)"},
		{name: "kicked member, fresh envelope", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(c, nil))
		}, status: 200, verdict: wire.Rejected, want: "not a member"},
		{name: "payload swarm differs from the key hint", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Swarm = f.other }))
		}, status: 200, verdict: wire.Rejected, want: "does not match the key hint"},
		{name: "direct message addressed to another agent", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.To = "d.test" }))
		}, status: 200, verdict: wire.Rejected, want: "not to this node"},
		{name: "unknown protocol version", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.V = 2 }))
		}, status: 200, verdict: wire.Rejected, want: "unsupported version 2"},
		{name: "unknown message type", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Type = "command" }))
		}, status: 200, verdict: wire.Rejected, want: "unknown message type"},
		{name: "system event on an ordinary message", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Event = wire.EventLeave }))
		}, status: 200, verdict: wire.Rejected, want: "system messages only"},
		{name: "unknown system event", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Type, m.Event = wire.TypeSystem, "reboot" }))
		}, status: 200, verdict: wire.Rejected, want: "unknown system event"},
		{name: "message id not a UUID", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.ID = "../../etc/passwd" }))
		}, status: 200, verdict: wire.Rejected, want: "invalid id"},
		{name: "unknown priority", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Priority = "extreme" }))
		}, status: 200, verdict: wire.Rejected, want: "unknown priority"},
		{name: "unknown reference kind", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Refs = []wire.Ref{{Kind: "shell", URL: "rm -rf /"}} }))
		}, status: 200, verdict: wire.Rejected, want: "unknown reference kind"},
		{name: "too many references", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Refs = make([]wire.Ref, 33) }))
		}, status: 200, verdict: wire.Rejected, want: "too many references"},
		{name: "very long sender domain", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.From = long }))
		}, status: 200, verdict: wire.Rejected, want: "invalid agent name"},
		{name: "upper-case and control characters in the recipient", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.To = "B.test\x00" }))
		}, status: 200, verdict: wire.Rejected, want: "invalid agent name"},
		{name: "oversize body (64 KiB + 1)", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Body = bigBody }))
		}, status: 200, verdict: wire.Rejected, want: "exceeds the limit of 65536"},
		{name: "NUL in the body", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Body = "hello\x00world" }))
		}, status: 200, verdict: wire.Rejected, want: "control character U+0000"},
		{name: "terminal escape in the body", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.env(a, func(m *wire.Message) { m.Body = "\x1b]0;pwned\x07" }))
		}, status: 200, verdict: wire.Rejected, want: "control character U+001B"},
		{name: "invalid UTF-8 in the signed payload", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func(p []byte) []byte { return bytes.Replace(p, []byte("bad input"), []byte("bad \xff\xfe"), 1) }))
		}, status: 200, verdict: wire.Rejected, want: "not valid UTF-8"},
		{name: "unknown field in the signed payload", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func(p []byte) []byte { return bytes.Replace(p, []byte(`{`), []byte(`{"admin":true,`), 1) }))
		}, status: 200, verdict: wire.Rejected, want: "unknown field"},
		{name: "trailing data after the signed payload", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func(p []byte) []byte { return append(p, []byte(` {"v":1}`)...) }))
		}, status: 200, verdict: wire.Rejected, want: "trailing data"},
		{name: "duplicate key in the signed payload", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func(p []byte) []byte {
				return bytes.Replace(p, []byte(`{`), []byte(`{"body":"shadowed",`), 1)
			}))
		}, status: 200, verdict: wire.Rejected, want: `key "body" appears twice`},
		{name: "signed payload is not an object", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func([]byte) []byte { return []byte(`["v",1]`) }))
		}, status: 200, verdict: wire.Rejected, want: "malformed payload"},
		{name: "deeply nested signed payload", surface: "messages", req: func(t *testing.T) rawReq {
			return batch(f.envBytes(a, func([]byte) []byte { return []byte(strings.Repeat("[", 90000)) }))
		}, status: 200, verdict: wire.Rejected, want: "malformed payload"},
		{name: "malformed key hint", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			e.KID = "../" + f.team
			return batch(e)
		}, status: 200, verdict: wire.Rejected, want: "malformed key hint"},
		{name: "very long key hint", surface: "messages", req: func(t *testing.T) rawReq {
			e := f.env(a, nil)
			e.KID = f.team + ":" + strings.Repeat("A", 10000)
			return batch(e)
		}, status: 200, verdict: wire.Rejected, want: "malformed key hint"},
		{name: "flooding member is rate limited", surface: "messages", prep: func(t *testing.T) {
			// d floods: b takes its burst (4), then refuses with retry.
			waitTokens(t, b, d, 4)
			envs := make([]wire.Signed, 20)
			for i := range envs {
				envs[i] = f.env(d, func(m *wire.Message) { m.Body = fmt.Sprint("flood warm-up ", i) })
			}
			code, body := f.send(t, f.h3, batch(envs...))
			br, err := wire.DecodeBatchReply(body, len(envs))
			if code != 200 || err != nil {
				t.Fatalf("warm-up: %d %v %s", code, err, body)
			}
			accepted := 0
			for i, r := range br.Results {
				if r.Status == wire.Accepted {
					accepted++
					f.floodSeen = envs[i]
				} else if !strings.Contains(r.Reason, "rate limited") || !r.Retry {
					t.Fatalf("warm-up envelope %d: %+v", i, r)
				}
			}
			if accepted == 0 || accepted > 5 {
				t.Fatalf("the flood got %d of 20 envelopes in; the burst is 4", accepted)
			}
		}, req: func(t *testing.T) rawReq {
			envs := make([]wire.Signed, 50)
			for i := range envs {
				envs[i] = f.env(d, func(m *wire.Message) { m.Body = fmt.Sprint("flood ", i) })
			}
			// Tokens refilled since the warm-up are spent on replays of an
			// envelope b already holds (a duplicate is charged too, and
			// stores nothing), so the flood meets an empty bucket.
			dups := make([]wire.Signed, 10)
			for i := range dups {
				dups[i] = f.floodSeen
			}
			for i := 0; ; i++ {
				_, body := f.send(t, f.h3, batch(dups...))
				if strings.Contains(string(body), "rate limited") {
					break
				}
				if i == 5 {
					t.Fatalf("d's bucket never ran dry: %s", body)
				}
			}
			return batch(envs...)
		}, status: 200, verdict: wire.Rejected, retry: true, want: "rate limited: too many messages from d.test",
			after: func(t *testing.T) {
				// Another member still gets through.
				waitTokens(t, b, a, 1)
				e := f.env(a, func(m *wire.Message) { m.Body = "a is not throttled by d" })
				code, body := f.send(t, f.h3, batch(e))
				if code != 200 || !strings.Contains(string(body), `"accepted"`) || !has(t, b, "a is not throttled by d") {
					t.Fatalf("another member's message during the flood: %d %s", code, body)
				}
			}},

		// ---- POST /swarm/v1/messages: the whole request is refused ----
		{name: "malformed JSON", surface: "messages", req: func(t *testing.T) rawReq { return msgBody(`{"envelopes": [nope]}`) },
			status: 400, want: "malformed JSON"},
		{name: "truncated body", surface: "messages", req: func(t *testing.T) rawReq {
			r := batch(f.env(a, nil))
			r.body = r.body[:len(r.body)/2]
			return r
		}, status: 400, want: "malformed JSON: unexpected EOF"},
		{name: "empty body", surface: "messages", req: func(t *testing.T) rawReq { return msgBody("") }, status: 400, want: "malformed JSON"},
		{name: "empty batch", surface: "messages", req: func(t *testing.T) rawReq { return msgBody(`{"envelopes":[]}`) },
			status: 400, want: "empty batch"},
		{name: "null body", surface: "messages", req: func(t *testing.T) rawReq { return msgBody(`null`) }, status: 400, want: "empty batch"},
		{name: "deeply nested JSON (100000 '[')", surface: "messages", req: func(t *testing.T) rawReq { return msgBody(nested) },
			status: 400, want: "malformed JSON"},
		{name: "deeply nested JSON inside the batch", surface: "messages", req: func(t *testing.T) rawReq {
			return msgBody(`{"envelopes":` + nested)
		}, status: 400, want: "malformed JSON"},
		{name: "unknown top-level field", surface: "messages", req: func(t *testing.T) rawReq {
			return msgBody(`{"envelopes":[],"admin":true}`)
		}, status: 400, want: "unknown field"},
		{name: "trailing data after the batch", surface: "messages", req: func(t *testing.T) rawReq {
			r := batch(f.env(a, nil))
			r.body = append(r.body, "{}"...)
			return r
		}, status: 400, want: "trailing data"},
		{name: "invalid UTF-8 in the body", surface: "messages", req: func(t *testing.T) rawReq {
			return msgBody("{\"envelopes\":[{\"kid\":\"\xff\xfe\"}]}")
		}, status: 400, want: "not valid UTF-8"},
		{name: "wrong JSON types", surface: "messages", req: func(t *testing.T) rawReq {
			return msgBody(`{"envelopes":[{"kid":1,"payload":true,"sig":{}}]}`)
		}, status: 400, want: "malformed JSON"},
		{name: "payload not base64", surface: "messages", req: func(t *testing.T) rawReq {
			return msgBody(`{"envelopes":[{"kid":"x","payload":"%%%","sig":""}]}`)
		}, status: 400, want: "malformed JSON"},
		{name: "too many envelopes (257)", surface: "messages", req: func(t *testing.T) rawReq {
			envs := make([]wire.Signed, wire.MaxBatch+1)
			e := f.env(a, nil)
			for i := range envs {
				envs[i] = e
			}
			return batch(envs...)
		}, status: 400, want: "exceeds the limit of 256"},
		{name: "one envelope over the payload limit", surface: "messages", req: func(t *testing.T) rawReq { return batch(bigPayload()) },
			status: 413, want: "payload limit"},
		{name: "request over 4 MiB (Content-Length)", surface: "messages", req: func(t *testing.T) rawReq { return manyBig() },
			status: 413, want: "exceeds the limit of 4194304 bytes"},
		{name: "request over 4 MiB (no Content-Length)", surface: "messages", req: func(t *testing.T) rawReq {
			r := manyBig()
			r.hideLen = true
			return r
		}, status: 413, want: "exceeds the limit of 4194304 bytes"},
		{name: "wrong content type", surface: "messages", req: func(t *testing.T) rawReq {
			r := batch(f.env(a, nil))
			r.ctype = "text/plain"
			return r
		}, status: 415, want: "content type must be application/json"},
		{name: "form content type", surface: "messages", req: func(t *testing.T) rawReq {
			r := batch(f.env(a, nil))
			r.ctype = "application/x-www-form-urlencoded"
			return r
		}, status: 415, want: "content type must be application/json"},
		{name: "slow client over HTTP/3 (body trickles)", surface: "messages", slow: true, do: func(t *testing.T) (int, []byte) {
			code, body := f.trickle(t, f.h3slow, 35*time.Second)
			if code == 0 {
				t.Fatal("over HTTP/3 the node held a trickling request open for 35 s; readBody bounds a body to 30 s")
			}
			return -1, []byte(fmt.Sprintf("bounded: %d %s", code, body))
		}, status: -1, want: "bounded"},
		{name: "slow client over TCP (body trickles)", surface: "messages", slow: true, do: func(t *testing.T) (int, []byte) {
			code, body := f.trickle(t, f.h2, 40*time.Second)
			if code == 0 {
				t.Fatal("over TCP the node held a trickling request open for 40 s; its ReadTimeout is 30 s")
			}
			return -1, []byte(fmt.Sprintf("bounded: %d %s", code, body))
		}, status: -1, want: "bounded"},

		// ---- POST /swarm/v1/join (to the master a) ----
		{name: "forged invite token", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, f.forged, nil, nil) },
			status: 403, want: "bad signature"},
		{name: "expired invite token", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, f.expired, nil, nil) },
			status: 403, want: "expired"},
		{name: "over-used invite token", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, f.usedUp, nil, nil) },
			status: 403, want: "used up (1 of 1)"},
		{name: "revoked invite token", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, f.revoked, nil, nil) },
			status: 403, want: "revoked"},
		{name: "token of another master's swarm", surface: "join", req: func(t *testing.T) rawReq { return f.join(c, f.xToken, nil, nil) },
			status: 403, want: "not issued by this node"},
		{name: "token of one swarm, request for another", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.otherSwarm, func(r *wire.JoinRequest) { r.Swarm = f.team }, nil)
		}, status: 403, want: "does not match the invite"},
		{name: "token for another invitee", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, f.forSomeone, nil, nil) },
			status: 403, want: "this invite is for someone.test"},
		{name: "kicked member with its old token", surface: "join", req: func(t *testing.T) rawReq { return f.join(c, f.kickedOld, nil, nil) },
			status: 403, want: "was kicked from this swarm"},
		{name: "member joining again", surface: "join", req: func(t *testing.T) rawReq { return f.join(b, f.fresh, nil, nil) },
			status: 403, want: "already a member"},
		{name: "newcomer under a member's name", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Domain = "b.test" }, nil)
		}, status: 403, want: "already a member"},
		{name: "not a token", surface: "join", req: func(t *testing.T) rawReq { return f.join(x, "hello", nil, nil) },
			status: 403, want: "not an invite token"},
		{name: "truncated token", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh[:strings.LastIndex(f.fresh, ".")], nil, nil)
		}, status: 403, want: "truncated"},
		{name: "token with garbled base64", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, "swarm1.!!!!.????", nil, nil)
		}, status: 403, want: "corrupted"},
		{name: "very long token", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, "swarm1."+strings.Repeat("A", 10000)+".AAAA", nil, nil)
		}, status: 403, want: "too long"},
		{name: "join request with a bad signature", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, nil, flipSig)
		}, status: 400, want: "join request: bad signature"},
		{name: "join request signed by a key other than the member's", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Key = d.id.KeyString() }, nil)
		}, status: 400, want: "signed by a key other than the member's"},
		{name: "stale join request", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Time = now().Add(-time.Hour).UnixMilli() }, nil)
		}, status: 400, want: "clock skew"},
		{name: "join request of an unknown version", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.V = 2 }, nil)
		}, status: 400, want: "unsupported join version 2"},
		{name: "joiner with a very long domain", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Domain = long }, nil)
		}, status: 400, want: "invalid agent name"},
		{name: "joiner domain with control characters", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Domain = "x.test\r\nSet-Cookie: a=b" }, nil)
		}, status: 400, want: "invalid agent name"},
		{name: "joiner address with a path", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Addr = "127.0.0.1:1/../admin" }, nil)
		}, status: 400, want: "invalid address"},
		{name: "joiner with a malformed pin", surface: "join", req: func(t *testing.T) rawReq {
			return f.join(x, f.fresh, func(r *wire.JoinRequest) { r.Member.Pin = "short" }, nil)
		}, status: 400, want: "invalid certificate pin"},
		{name: "join: malformed JSON", surface: "join", req: func(t *testing.T) rawReq {
			return rawReq{to: a, path: "/swarm/v1/join", body: []byte(`{"token":`)}
		}, status: 400, want: "malformed JSON"},
		{name: "join: deeply nested JSON", surface: "join", req: func(t *testing.T) rawReq {
			return rawReq{to: a, path: "/swarm/v1/join", body: []byte(strings.Repeat("[", 60000))}
		}, status: 400, want: "malformed JSON"},
		{name: "join: oversize body", surface: "join", req: func(t *testing.T) rawReq {
			return rawReq{to: a, path: "/swarm/v1/join", body: []byte(`{"token":"` + strings.Repeat("A", 70<<10) + `"}`)}
		}, status: 413, want: "exceeds the limit of 65536 bytes"},
		{name: "join: wrong content type", surface: "join", req: func(t *testing.T) rawReq {
			r := f.join(x, f.fresh, nil, nil)
			r.ctype = "text/plain"
			return r
		}, status: 415, want: "content type must be application/json"},

		// ---- GET /swarm/v1/swarms/{id}/log ----
		{name: "missing Swarm-Auth", surface: "log", req: func(t *testing.T) rawReq { return f.logReq(f.logPath(f.team)+"?after=0", "") },
			status: 401, want: "malformed Swarm-Auth header"},
		{name: "garbled Swarm-Auth", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", "Bearer hunter2")
		}, status: 401, want: "malformed Swarm-Auth header"},
		{name: "Swarm-Auth with bad base64", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.team+":k.%%%.%%%")
		}, status: 401, want: "malformed Swarm-Auth header"},
		{name: "Swarm-Auth with a short signature", surface: "log", req: func(t *testing.T) rawReq {
			h := goodAuth()
			return f.logReq(f.logPath(f.team)+"?after=0", h[:strings.LastIndex(h, ".")+1]+"AAAA")
		}, status: 401, want: "signature must be 64 bytes"},
		{name: "oversize Swarm-Auth", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", strings.Repeat("A", 3000)+".AA.AA")
		}, status: 401, want: "malformed Swarm-Auth header"},
		{name: "Swarm-Auth naming another swarm", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(b, f.other, nil, nil))
		}, status: 401, want: "names another swarm"},
		{name: "Swarm-Auth by a non-member", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(x, f.team, nil, nil))
		}, status: 403, want: "not a member of this swarm"},
		{name: "Swarm-Auth by a kicked member", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(c, f.team, nil, nil))
		}, status: 403, want: "not a member of this swarm"},
		{name: "Swarm-Auth with a forged signature", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(b, f.team, nil, flipSig))
		}, status: 401, want: "bad signature"},
		{name: "Swarm-Auth signed for another path", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(b, f.team, func(r *wire.Request) { r.Path = "/swarm/v1/messages" }, nil))
		}, status: 401, want: "request authentication failed"},
		{name: "Swarm-Auth signed for another method", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(b, f.team, func(r *wire.Request) { r.Method = "POST" }, nil))
		}, status: 401, want: "request authentication failed"},
		{name: "stale Swarm-Auth (replayed an hour later)", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(b, f.team, func(r *wire.Request) { r.Time = now().Add(-time.Hour).UnixMilli() }, nil))
		}, status: 401, want: "request authentication failed"},
		{name: "Swarm-Auth by one member claiming another's name", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=0", f.logAuth(d, f.team, func(r *wire.Request) { r.From = "a.test" }, nil))
		}, status: 401, want: "request authentication failed"},
		{name: "after is not a number", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(f.team)+"?after=-1", goodAuth())
		}, status: 400, want: "after must be a record index"},
		{name: "after missing", surface: "log", req: func(t *testing.T) rawReq { return f.logReq(f.logPath(f.team), goodAuth()) },
			status: 400, want: "after must be a record index"},
		{name: "swarm id that is not one", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq(f.logPath(strings.ToUpper(f.team))+"?after=0", goodAuth())
		}, status: 400, want: "invalid swarm id"},
		{name: "path trick: %2e%2e as the swarm id", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq("/swarm/v1/swarms/%2e%2e/log?after=0", goodAuth())
		}, status: 400, want: "invalid swarm id"},
		{name: "path trick: encoded slash in the swarm id", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq("/swarm/v1/swarms/a%2Fb/log?after=0", goodAuth())
		}, status: 400, want: "invalid swarm id"},
		{name: "path trick: ../ in the path", surface: "log", req: func(t *testing.T) rawReq {
			return f.logReq("/swarm/v1/swarms/../../../etc/passwd?after=0", goodAuth())
		}, status: 404, want: "no such endpoint"},

		// ---- POST /swarm/v1/ping ----
		{name: "ping from a key that shares no swarm", surface: "ping", req: func(t *testing.T) rawReq { return f.ping(x, nil, nil) },
			status: 403, want: "shares no swarm"},
		{name: "ping with a forged signature", surface: "ping", req: func(t *testing.T) rawReq { return f.ping(a, nil, flipSig) },
			status: 403, want: "bad signature"},
		{name: "ping in a member's name by another member", surface: "ping", req: func(t *testing.T) rawReq {
			return f.ping(d, func(p *wire.Presence) { p.From = "a.test" }, nil)
		}, status: 403, want: "wrong agents"},
		{name: "ping with an unknown presence state", surface: "ping", req: func(t *testing.T) rawReq {
			return f.ping(a, func(p *wire.Presence) { p.State = "root" }, nil)
		}, status: 403, want: "unknown presence state"},
		{name: "ping with control characters in the status line", surface: "ping", req: func(t *testing.T) rawReq {
			return f.ping(a, func(p *wire.Presence) { p.Status = "ok\x1b[2J" }, nil)
		}, status: 403, want: "control character"},
		{name: "ping: malformed JSON", surface: "ping", req: func(t *testing.T) rawReq {
			return rawReq{path: "/swarm/v1/ping", body: []byte(`{"kid":`)}
		}, status: 400, want: "malformed JSON"},

		// ---- unknown endpoints, methods and versions ----
		{name: "unknown endpoint", surface: "http", req: func(t *testing.T) rawReq { return rawReq{method: "GET", path: "/admin", ctype: "-"} },
			status: 404, want: "no such endpoint: GET /admin"},
		{name: "unknown protocol version in the path", surface: "http", req: func(t *testing.T) rawReq {
			r := batch(f.env(a, nil))
			r.path = "/swarm/v2/messages"
			return r
		}, status: 404, want: "no such endpoint: POST /swarm/v2/messages"},
		{name: "GET on a POST endpoint", surface: "http", req: func(t *testing.T) rawReq {
			return rawReq{method: "GET", path: "/swarm/v1/messages", ctype: "-"}
		}, status: 405, want: "GET /swarm/v1/messages is not allowed: use POST"},
		{name: "DELETE on the join endpoint", surface: "http", req: func(t *testing.T) rawReq {
			return rawReq{to: a, method: "DELETE", path: "/swarm/v1/join", ctype: "-"}
		}, status: 405, want: "DELETE /swarm/v1/join is not allowed: use POST"},
		{name: "POST on the log endpoint", surface: "http", req: func(t *testing.T) rawReq {
			return rawReq{method: "POST", path: f.logPath(f.team), body: []byte(`{}`)}
		}, status: 405, want: "is not allowed: use GET"},
	}

	var n int
	for _, tc := range cases {
		n++
		tc := tc
		t.Run(tc.surface+"/"+tc.name, func(t *testing.T) {
			if tc.slow {
				t.Parallel()
			}
			if tc.prep != nil {
				tc.prep(t)
			}
			before := snapshot(t, a) + snapshot(t, b)
			var code int
			var body []byte
			if tc.do != nil {
				code, body = tc.do(t)
			} else {
				code, body = f.send(t, f.h3, tc.req(t))
			}
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, clipBody(body))
			}
			if tc.verdict != "" {
				var br wire.BatchReply
				if err := json.Unmarshal(body, &br); err != nil || len(br.Results) == 0 {
					t.Fatalf("reply %s: %v", clipBody(body), err)
				}
				for i, r := range br.Results {
					if r.Status != tc.verdict || !strings.Contains(r.Reason, tc.want) || (r.Status == wire.Rejected && r.Retry != tc.retry) {
						t.Errorf("envelope %d: %s %q retry=%v; want %s %q retry=%v", i, r.Status, r.Reason, r.Retry, tc.verdict, tc.want, tc.retry)
					}
				}
			} else if tc.status < 0 { // no HTTP reply: what happened to the stream
				if !strings.Contains(string(body), tc.want) {
					t.Errorf("got %s, want %q", clipBody(body), tc.want)
				}
			} else {
				var e apiError
				if json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, tc.want) {
					t.Errorf("error reply %s does not name the problem (want %q)", clipBody(body), tc.want)
				}
			}
			if after := snapshot(t, a) + snapshot(t, b); after != before {
				t.Errorf("the store changed:\nbefore: %s\nafter: %s", before, after)
			}
			if tc.after != nil {
				tc.after(t)
			}
		})
	}
	if n < 60 {
		t.Fatalf("the table holds %d rows; the spec wants at least 60", n)
	}
}

func clipBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
