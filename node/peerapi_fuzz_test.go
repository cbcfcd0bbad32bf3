package node

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzPeerAPI throws arbitrary bodies and headers at every peer endpoint
// of a node that is in a swarm. Nothing unsigned can get in: the handler
// must never panic or fail as a fault (5xx), and the inbox, the members
// and the log must stay as they were.
func FuzzPeerAPI(f *testing.F) {
	paths := []string{"/swarm/v1/messages", "/swarm/v1/join", "/swarm/v1/ping", "/swarm/v1/swarms/%s/log?after=0", "/.well-known/swarm-agent"}
	f.Add(uint8(0), []byte(`{"envelopes":[{"kid":"x","payload":"e30=","sig":"AA=="}]}`), "")
	f.Add(uint8(1), []byte(`{"token":"swarm1.AAAA.BBBB","member":{}}`), "")
	f.Add(uint8(2), []byte(`{"kid":"k","payload":"eyJ2IjoxfQ==","sig":""}`), "")
	f.Add(uint8(3), []byte{}, "swarm1-auth garbage")
	f.Add(uint8(0), []byte(`[[[[[[[[[[[[[[[[[[[[`), "")
	f.Add(uint8(0), []byte("{\"envelopes\":[\xff\xfe]}"), "")
	home := scHomeTB(f, nil, "fz.test")
	n, err := Open(home, Options{Log: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	sw, err := n.Create(CreateArgs{Name: "team"})
	if err != nil {
		f.Fatal(err)
	}
	h := n.PeerHandler()
	before := snapshotState(f, n)
	f.Fuzz(func(t *testing.T, which uint8, body []byte, auth string) {
		path := paths[int(which)%len(paths)]
		if bytes.Contains([]byte(path), []byte("%s")) {
			path = "/swarm/v1/swarms/" + sw.ID + "/log?after=0"
		}
		method := "POST"
		if path[:6] != "/swarm" || bytes.Contains([]byte(path), []byte("/log")) {
			method = "GET"
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if auth != "" {
			r.Header.Set("Swarm-Auth", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		if w.Code != http.StatusOK && w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("an error without a JSON body: %d %q", w.Code, w.Body)
		}
		if after := snapshotState(t, n); after != before {
			t.Fatalf("unsigned input changed the node:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// snapshotState is what a peer could change: inbox, members, swarms.
func snapshotState(t testing.TB, n *Node) string {
	t.Helper()
	var b bytes.Buffer
	msgs, _ := n.Inbox(InboxArgs{IncludeMuted: true, Limit: 1000})
	sws, _ := n.List()
	ms, _ := n.Members("team")
	for _, m := range msgs {
		b.WriteString(m.ID + ";")
	}
	for _, s := range sws {
		fmt.Fprintf(&b, "%s@%d;", s.ID, s.Head)
	}
	for _, m := range ms {
		b.WriteString(m.Domain + ";")
	}
	return b.String()
}
