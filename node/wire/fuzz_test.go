package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// The fuzz targets cover every parser of peer input. Their seed corpora
// (f.Add here, testdata/fuzz for found cases) run on every `go test`.

var fuzzNow = time.UnixMilli(1_800_000_000_000)

func seedKey() (ed25519.PrivateKey, string) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	return priv, identity.EncodeKey(priv.Public().(ed25519.PublicKey))
}

func seedMessage() wire.Message {
	return wire.Message{V: 1, ID: "01a210cc-e7e9-7190-aed8-0edc1875a521", Swarm: "f4eeqcbnhdcy3fkb6hc235s5", From: "a.test", To: "*",
		Type: "message", Created: fuzzNow.UnixMilli(), Expires: fuzzNow.Add(time.Hour).UnixMilli(), Seq: 1, Body: "hello",
		Refs: []wire.Ref{{Kind: "issue", Repo: "o/r", Number: 3}}}
}

func FuzzParseMessage(f *testing.F) {
	b, _ := json.Marshal(seedMessage())
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"id":"x","extra":1}`))
	f.Add([]byte("\xff\xfe"))
	// Threads: short names and message IDs are accepted, the rest refused.
	for _, th := range []string{"design", "pr-12.review_2", "01a210cc-e7e9-7190-aed8-0edc1875a521", "Design", "a b", "a/b", "-x", "x\u0000", "x\u200b", strings.Repeat("t", 65)} {
		m := seedMessage()
		m.Thread = th
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := wire.ParseMessage(payload, fuzzNow, wire.DefaultWindow)
		if err != nil {
			return
		}
		if m.Thread != "" && (len(m.Thread) > 64 || strings.ContainsAny(m.Thread, " /\\\n\x00")) {
			t.Fatalf("accepted thread %q", m.Thread)
		}
		// What is accepted re-encodes to something accepted again, unchanged.
		again, _ := json.Marshal(m)
		m2, err := wire.ParseMessage(again, fuzzNow, wire.DefaultWindow)
		if err != nil {
			t.Fatalf("accepted message does not survive a round trip: %v", err)
		}
		if m2.ID != m.ID || m2.Body != m.Body || m2.From != m.From {
			t.Fatal("round trip changed the message")
		}
	})
}

func FuzzDecodeSigned(f *testing.F) {
	priv, kid := seedKey()
	b, _ := json.Marshal(wire.Sign(wire.PurposeEnvelope, kid, priv, []byte(`{"v":1}`)))
	f.Add(b)
	f.Add([]byte(`{"kid":"","payload":"","sig":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := wire.DecodeSigned(data)
		if err != nil {
			return
		}
		// Verification never panics and never accepts under another key.
		other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey)
		if s.Verify(wire.PurposeEnvelope, other) == nil {
			t.Fatal("verified under an unrelated key")
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	priv, kid := seedKey()
	b, _ := json.Marshal(wire.Batch{Envelopes: []wire.Signed{wire.Sign(wire.PurposeEnvelope, kid, priv, []byte(`{}`))}})
	f.Add(b)
	f.Add([]byte(`{"envelopes":[]}`))
	f.Add([]byte(`{"envelopes":[{"kid":1}]}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := wire.DecodeBatch(data)
		if err == nil && (len(b.Envelopes) == 0 || len(b.Envelopes) > wire.MaxBatch) {
			t.Fatalf("accepted a batch of %d", len(b.Envelopes))
		}
	})
}

func FuzzParseToken(f *testing.F) {
	priv, kid := seedKey()
	inv := wire.Invite{V: 1, ID: "01a210cc-e7e9-7190-aed8-0edc1875a521", Swarm: "f4eeqcbnhdcy3fkb6hc235s5", Name: "team",
		Master: wire.Member{Domain: "a.test", Key: kid, Addr: "127.0.0.1:7443"}, Expires: fuzzNow.Add(time.Hour).UnixMilli(), Uses: 1}
	s, _ := wire.SignJSON(wire.PurposeToken, kid, priv, inv)
	f.Add(wire.EncodeToken(s))
	f.Add("swarm1.")
	f.Add("swarm1.e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		got, sg, err := wire.ParseToken(tok, fuzzNow)
		if err != nil {
			return
		}
		again, sg2, err := wire.ParseToken(wire.EncodeToken(sg), fuzzNow)
		if err != nil || again.ID != got.ID || !bytes.Equal(sg.Payload, sg2.Payload) {
			t.Fatalf("an accepted token does not re-encode to the same invite: %v", err)
		}
	})
}

func FuzzDecodeJoin(f *testing.F) {
	priv, kid := seedKey()
	req := wire.JoinRequest{V: 1, Swarm: "f4eeqcbnhdcy3fkb6hc235s5", Invite: "01a210cc-e7e9-7190-aed8-0edc1875a521",
		Member: wire.Member{Domain: "b.test", Key: kid, Addr: "127.0.0.1:7444"}, Time: fuzzNow.UnixMilli()}
	s, _ := wire.SignJSON(wire.PurposeJoin, kid, priv, req)
	b, _ := json.Marshal(wire.Join{Token: "swarm1.x.y", Request: s})
	f.Add(b)
	f.Add([]byte(`{"token":"","request":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, r, err := wire.DecodeJoin(data, fuzzNow, wire.DefaultWindow)
		if err == nil && r.Member.Check() != nil {
			t.Fatal("accepted a join with an invalid member")
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	_, kid := seedKey()
	b, _ := json.Marshal(wire.Record{V: 1, Type: "create", Time: 1, Member: &wire.Member{Domain: "a.test", Key: kid, Addr: "127.0.0.1:1"}, Settings: &wire.Settings{Name: "team"}})
	f.Add(b)
	f.Add([]byte(`{"v":1,"index":3,"type":"remove","agent":"x.test","reason":"kick"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := wire.ParseRecord(data)
		if err == nil && r.Check() != nil {
			t.Fatal("ParseRecord accepted what Check refuses")
		}
	})
}

func FuzzPresenceAndAuth(f *testing.F) {
	priv, kid := seedKey()
	p, _ := json.Marshal(wire.Presence{V: 1, From: "a.test", To: "b.test", State: "busy", Status: "x", Time: fuzzNow.UnixMilli(), Nonce: "n"})
	f.Add(p, wire.EncodeAuth(wire.Sign(wire.PurposeRequest, "f4eeqcbnhdcy3fkb6hc235s5:"+kid, priv, []byte(`{}`))))
	f.Add([]byte(`{}`), "a.b.c")
	f.Fuzz(func(t *testing.T, presence []byte, auth string) {
		if pr, err := wire.ParsePresence(presence, fuzzNow, wire.DefaultWindow); err == nil && pr.State == "" {
			t.Fatal("accepted presence without a state")
		}
		if s, err := wire.DecodeAuth(auth); err == nil {
			_, _, _ = wire.SplitKeyHint(s.KID)
			_, _ = wire.ParseRequest(s.Payload, "GET", "/x", fuzzNow, wire.DefaultWindow)
		}
	})
}
