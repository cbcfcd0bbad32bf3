package node

import (
	"context"
	"os"

	"github.com/rs/zerolog"
	"strings"
	"testing"
	"time"
)

// BenchmarkDirectMessage: a direct message from a to b, signed, verified,
// durably stored on both sides and acked (Send with Wait).
func BenchmarkDirectMessage(b *testing.B) {
	a, ctx, body := benchPair(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: body, Wait: 10 * time.Second})
		if err != nil || res.Deliveries[0].Status != Delivered {
			b.Fatalf("%v %+v", err, res.Deliveries)
		}
	}
}

func scNodeB(b *testing.B, domain string) *Node {
	home := scHomeTB(b, nil, domain)
	cfg, _ := LoadConfig(home)
	cfg.RateLimit = 100000 // measure the node, not the flood guard
	SaveConfig(home, cfg)
	n, err := Open(home, Options{Serve: true, Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// BenchmarkThroughput: 64 senders, no wait, then every delivery acked:
// sustained direct messages with durability on both sides.
func BenchmarkThroughput(b *testing.B) {
	a, ctx, body := benchPair(b)
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Send(ctx, SendArgs{Swarm: "team", To: "b.test", Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	sent := time.Since(start)
	if left := a.Flush(ctx, time.Minute); left > 0 {
		b.Fatalf("%d still queued", left)
	}
	b.ReportMetric(float64(sent.Milliseconds()), "send-ms")
}

// benchPair is node a and a member b.test in swarm "team", and a 512-byte body.
func benchPair(b *testing.B) (*Node, context.Context, string) {
	a, c := scNodeB(b, "a.test"), scNodeB(b, "b.test")
	ctx := context.Background()
	if _, err := a.Create(CreateArgs{Name: "team"}); err != nil {
		b.Fatal(err)
	}
	inv, _ := a.Invite(InviteArgs{Swarm: "team"})
	if _, err := c.Join(ctx, inv.Token); err != nil {
		b.Fatal(err)
	}
	return a, ctx, strings.Repeat("x", 512)
}
