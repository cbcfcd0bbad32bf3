package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/metrics"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/rs/zerolog"
)

func openNode(t *testing.T, domain string) *node.Node {
	t.Helper()
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: domain, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(home, node.Options{Serve: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// scrape reads every sample of a /metrics page: "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func serve(t *testing.T, n *node.Node) string {
	t.Helper()
	addr, stop, err := metrics.Serve("127.0.0.1:0", n, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return "http://" + addr + "/metrics"
}

// TestCountersMoveWithMessages: a small load from a to b moves a's sent,
// delivered and latency figures and b's received count by exactly what
// flowed; the outbox empties; refusals are counted by reason.
func TestCountersMoveWithMessages(t *testing.T) {
	a, b := openNode(t, "a.test"), openNode(t, "b.test")
	if _, err := a.Create(node.CreateArgs{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	inv, err := a.Invite(node.InviteArgs{Swarm: "team"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(context.Background(), inv.Token); err != nil {
		t.Fatal(err)
	}
	am, bm := serve(t, a), serve(t, b)
	a0, b0 := scrape(t, am), scrape(t, bm)

	const load = 40
	ctx := context.Background()
	for i := range load {
		wait := time.Duration(0)
		if i == load-1 {
			wait = 10 * time.Second
		}
		if _, err := a.Send(ctx, node.SendArgs{Swarm: "team", To: "b.test", Body: fmt.Sprintf("m%d", i), Wait: wait}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var a1, b1 map[string]float64
	for {
		a1, b1 = scrape(t, am), scrape(t, bm)
		if a1[`swarm_deliveries_total{result="delivered"}`]-a0[`swarm_deliveries_total{result="delivered"}`] == load || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"a sent", a1["swarm_messages_sent_total"] - a0["swarm_messages_sent_total"], load},
		{"a delivered", a1[`swarm_deliveries_total{result="delivered"}`] - a0[`swarm_deliveries_total{result="delivered"}`], load},
		{"a failed", a1[`swarm_deliveries_total{result="failed"}`], 0},
		{"a latency observations", a1["swarm_delivery_latency_seconds_count"] - a0["swarm_delivery_latency_seconds_count"], load},
		{"a outbox", a1["swarm_outbox_depth"], 0},
		{"a swarms", a1["swarm_swarms"], 1},
		{"a ready", a1["swarm_ready"], 1},
		{"b received", b1["swarm_messages_received_total"] - b0["swarm_messages_received_total"], load},
		{"b quota refusals", b1[`swarm_rejections_total{reason="quota"}`], 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if a1[`swarm_delivery_latency_seconds_bucket{le="+Inf"}`] != a1["swarm_delivery_latency_seconds_count"] || a1["swarm_delivery_latency_seconds_sum"] <= 0 {
		t.Errorf("latency histogram inconsistent: %v", a1)
	}
	if a1["swarm_disk_free_bytes"] <= 0 || a1["go_goroutines"] <= 0 {
		t.Errorf("gauges missing: free %v goroutines %v", a1["swarm_disk_free_bytes"], a1["go_goroutines"])
	}
	if _, ok := a1[`swarm_peer_connections_in{transport="quic"}`]; !ok {
		t.Errorf("no inbound connection gauge")
	}
}

// TestMetricsStayOnLoopback: a non-loopback address is refused before
// anything listens, and a request naming another host (DNS rebinding from
// a web page) is refused.
func TestMetricsStayOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9100", ":9100", "192.0.2.1:9100", "example.com:9100", "nonsense"} {
		if err := metrics.CheckListen(addr); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:9100", "[::1]:9100", "localhost:0"} {
		if err := metrics.CheckListen(addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	url := serve(t, openNode(t, "a.test"))
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebound host: %d", resp.StatusCode)
	}
}
