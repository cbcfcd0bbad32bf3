package node

// Interop: an HTTP/3 client that shares no code with the node (ngtcp2's
// example client from Debian's ngtcp2-client package, built on GnuTLS and
// nghttp3) talks to a real node's peer API.

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/rs/zerolog"
)

// h3Client finds ngtcp2's example client, or skips.
func h3Client(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"gtlsclient", "ngtcp2-client-gnutls"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ngtcp2's HTTP/3 client (gtlsclient) is not installed; .ci/run installs ngtcp2-client")
	}
	t.Skip("skipped: ngtcp2's HTTP/3 client (gtlsclient) is not installed; apt-get install -y ngtcp2-client")
	return ""
}

var h3Status = regexp.MustCompile(`\[:status: (\d+)\]`)

// h3Do runs one request with the ngtcp2 client and returns the HTTP status
// and the body. The example client does not verify the server's
// certificate at all (it is a test tool), which is what the node's
// self-signed certificate needs here and only here. It cannot set request
// headers: a POST carries no Content-Type.
func h3Do(t *testing.T, client, addr, method, path string, body []byte) (string, []byte) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dl := filepath.Join(dir, "dl")
	if err := os.Mkdir(dl, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
		"--timeout=10s", "--handshake-timeout=5s", "--download=" + dl, "-m", method}
	if body != nil {
		data := filepath.Join(dir, "body.json")
		if err := os.WriteFile(data, body, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-d", data)
	}
	args = append(args, host, port, "https://"+addr+path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, client, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, tail(out))
	}
	if !strings.Contains(string(out), "Negotiated ALPN is h3") {
		t.Fatalf("%s %s: the client did not negotiate h3:\n%s", method, path, tail(out))
	}
	m := h3Status.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s %s: no response status:\n%s", method, path, tail(out))
	}
	// --download names the file after the last path segment.
	got, err := os.ReadFile(filepath.Join(dl, path[strings.LastIndex(path, "/")+1:]))
	if err != nil {
		t.Fatalf("%s %s: status %s, no body saved: %v", method, path, m[1], err)
	}
	return string(m[1]), got
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func TestInteropNgtcp2Client(t *testing.T) {
	client := h3Client(t)
	a, b := scNode(t, "a.test"), scNode(t, "b.test")
	scSwarm(t, a, b)

	t.Run("agent card", func(t *testing.T) {
		code, body := h3Do(t, client, b.Addr(), "GET", "/.well-known/swarm-agent", nil)
		var card AgentCard
		if err := json.Unmarshal(body, &card); err != nil || code != "200" {
			t.Fatalf("GET /.well-known/swarm-agent: %s %s (%v)", code, body, err)
		}
		if card.Domain != "b.test" || card.Key != b.id.KeyString() || len(card.Versions) == 0 || card.Versions[0] != "swarm/v1" {
			t.Fatalf("agent card %+v, want b.test's", card)
		}
	})

	t.Run("post envelope", func(t *testing.T) { postOverNgtcp2(t, client, a, b, b.Addr(), "over ngtcp2") })

	// The same POST through a shim that supplies the Content-Type the
	// client cannot send, in front of b's own peer handler and TLS
	// certificate: everything but that header is interoperable.
	t.Run("post envelope with content type shim", func(t *testing.T) {
		port, err := transport.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		h := b.PeerHandler()
		shim := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Content-Type") == "" {
				r.Header.Set("Content-Type", "application/json")
			}
			h.ServeHTTP(w, r)
		})
		srv, err := transport.Listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), shim, transport.ListenOptions{Certs: b.certs, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		postOverNgtcp2(t, client, a, b, srv.Addr(), "over ngtcp2, shimmed")
	})
}

// postOverNgtcp2 posts a signed envelope from a to b at addr: accepted,
// in b's inbox once, and a replay is a duplicate.
func postOverNgtcp2(t *testing.T, client string, a, b *Node, addr, text string) {
	t.Helper()
	before := len(bodies(t, b))
	env := envelopeFrom(t, a, text)
	batch, _ := json.Marshal(wire.Batch{Envelopes: []wire.Signed{env}})
	code, body := h3Do(t, client, addr, "POST", "/swarm/v1/messages", batch)
	if code == "415" {
		t.Fatalf("POST /swarm/v1/messages without a Content-Type (this client cannot send one) is refused: %s %s", code, body)
	}
	var reply wire.BatchReply
	if err := json.Unmarshal(body, &reply); err != nil || code != "200" || len(reply.Results) != 1 {
		t.Fatalf("POST /swarm/v1/messages: %s %s (%v)", code, body, err)
	}
	if r := reply.Results[0]; r.Status != wire.Accepted {
		t.Fatalf("the envelope was %s (%s), want accepted", r.Status, r.Reason)
	}
	if !has(t, b, text) || len(bodies(t, b)) != before+1 {
		t.Fatalf("b's inbox %v, want %q once", bodies(t, b), text)
	}
	// The same envelope again is a duplicate, and still stored once.
	code, body = h3Do(t, client, addr, "POST", "/swarm/v1/messages", batch)
	if err := json.Unmarshal(body, &reply); err != nil || code != "200" || reply.Results[0].Status != wire.Duplicate {
		t.Fatalf("replay: %s %s (%v), want duplicate", code, body, err)
	}
	if len(bodies(t, b)) != before+1 {
		t.Fatal("a replay was stored twice")
	}
}
