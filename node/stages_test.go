package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
)

// The stages of one direct message, each alone, for the per-stage budget
// in docs/performance.md (go test -run '^$' -bench 'Stage|DirectMessage'
// ./node). Every stage runs on the same two nodes as
// BenchmarkDirectMessage, so their sum can be set against it.

// stagePair is benchPair with its member b.test.
func stagePair(b *testing.B) (*Node, *Node, string) {
	a, c := scNodeB(b, "a.test"), scNodeB(b, "b.test")
	if _, err := a.Create(CreateArgs{Name: "team"}); err != nil {
		b.Fatal(err)
	}
	inv, _ := a.Invite(InviteArgs{Swarm: "team"})
	if _, err := c.Join(context.Background(), inv.Token); err != nil {
		b.Fatal(err)
	}
	return a, c, strings.Repeat("x", 512)
}

// stageEnv builds and signs a direct message from a to b.test.
func stageEnv(b *testing.B, a *Node, body string) (wire.Signed, *wire.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.live("team")
	if err != nil {
		b.Fatal(err)
	}
	m, err := a.agentIn(s, "b.test")
	if err != nil {
		b.Fatal(err)
	}
	env, msg, err := a.envelope(s.state, sendSpec{To: m.Domain, ToKey: m.Key, Type: wire.TypeMessage, Body: body})
	if err != nil {
		b.Fatal(err)
	}
	return env, msg
}

// BenchmarkStageSign: the sender builds the message and signs it.
func BenchmarkStageSign(b *testing.B) {
	a, _, body := benchPair(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stageEnv(b, a, body)
	}
}

// BenchmarkStageSenderCommit: the sender's outbox transaction (message,
// sequence number, outbox entry, pending delivery), committed, no sync.
func BenchmarkStageSenderCommit(b *testing.B) {
	a, _, body := benchPair(b)
	env, msg := stageEnv(b, a, body)
	rc := []string{"team:x"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := *msg
		m.ID = msg.ID[:30] + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		if err := a.st.UpdateLazyEssential(func(tx *store.Tx) error { return a.out.enqueue(tx, env, &m, "", rc) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageSync: one small durable transaction (commit and sync)
// on the node's store, alone: the sync is this less a lazy commit.
func BenchmarkStageSync(b *testing.B) {
	a, _, _ := benchPair(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.st.Update(func(tx *store.Tx) error { return tx.Put(store.Key("x", "sync"), i) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageLazyCommit: the same transaction without the sync.
func BenchmarkStageLazyCommit(b *testing.B) {
	a, _, _ := benchPair(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.st.UpdateLazy(func(tx *store.Tx) error { return tx.Put(store.Key("x", "sync"), i) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageWire: the request on the wire: a batch of one envelope
// POSTed over HTTP/3 to a handler that reads it and answers a one-result
// reply, with the JSON of both ways (no verification, no store).
func BenchmarkStageWire(b *testing.B) {
	a, _, body := benchPair(b)
	env, _ := stageEnv(b, a, body)
	dir := b.TempDir()
	certPEM, keyPEM, err := transport.SelfSigned("raw.test", []string{"127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), keyPEM, 0o600)
	certs, err := transport.LoadCerts(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	reply, _ := json.Marshal(wire.BatchReply{Results: []wire.Result{{ID: "x", Status: wire.Accepted}}})
	srv, err := transport.Listen("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bb, _ := io.ReadAll(r.Body)
		if _, err := wire.DecodeBatch(bb); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Write(reply)
	}), transport.ListenOptions{Certs: certs, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	pin, _ := transport.PinOf(*certs.Current())
	c := transport.NewClient(transport.ClientOptions{})
	defer c.Close()
	p := transport.Peer{Addr: srv.Addr(), Pin: pin}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bb, _ := json.Marshal(wire.Batch{Envelopes: []wire.Signed{env}})
		code, rep, err := c.Do(ctx, p, "POST", "/swarm/v1/messages", bb, nil, 1<<20)
		if err != nil || code != 200 {
			b.Fatal(code, err)
		}
		if _, err := wire.DecodeBatchReply(rep, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// stageEnvs signs n messages ahead, outside the timer.
func stageEnvs(b *testing.B, a *Node, body string, n int) []wire.Signed {
	envs := make([]wire.Signed, n)
	for i := range envs {
		envs[i], _ = stageEnv(b, a, body)
	}
	return envs
}

// BenchmarkStageVerify: the receiver checks one envelope: key hint,
// membership, Ed25519 verification, strict decoding, rate limit.
func BenchmarkStageVerify(b *testing.B) {
	a, c, body := stagePair(b)
	envs := stageEnvs(b, a, body, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v := c.check(envs[i], "127.0.0.1"); v.msg == nil {
			b.Fatalf("%+v", v.res)
		}
	}
}

// BenchmarkStageReceiverCommit: the receiver stores one checked envelope
// durably (seen ID, sequence, inbox, quotas; commit and sync).
func BenchmarkStageReceiverCommit(b *testing.B) {
	a, c, body := stagePair(b)
	envs := stageEnvs(b, a, body, b.N)
	vs := make([]verdict, b.N)
	for i := range envs {
		vs[i] = c.check(envs[i], "127.0.0.1")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.commit(vs[i : i+1])
		if vs[i].res.Status != wire.Accepted {
			b.Fatalf("%+v", vs[i].res)
		}
	}
}

// BenchmarkStageSettle: the sender settles one acked delivery (outbox
// entry deleted, delivery marked, lazily) and wakes waiters.
func BenchmarkStageSettle(b *testing.B) {
	a, _, body := benchPair(b)
	env, msg := stageEnv(b, a, body)
	p := &peerSender{o: a.out, peer: "team:x", wake: make(chan struct{}, 1), queued: map[string]bool{}}
	ids := make([]string, b.N)
	for i := range ids {
		m := *msg
		m.ID = strings.Repeat("0", 8) + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)) + string(rune('a'+i/17576%26))
		ids[i] = m.ID
		if err := a.st.UpdateLazyEssential(func(tx *store.Tx) error { return a.out.enqueue(tx, env, &m, "", []string{p.peer}) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.settle(ids[i:i+1], func(string) (string, string, bool) { return Delivered, "", true }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageDeliveries: a waiting Send reads its message's delivery
// statuses once woken.
func BenchmarkStageDeliveries(b *testing.B) {
	a, ctx, body := benchPair(b)
	res, err := a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: body})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.deliveries(res.ID); err != nil {
			b.Fatal(err)
		}
	}
}
