package node

import (
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/google/uuid"
)

// Metrics are what the node counts, read when someone asks (a Prometheus
// scrape: package metrics). The core holds plain atomic counters that
// its paths bump as they go, and computes its gauges (outbox depth,
// connections, free space) only when asked: an idle node does no work
// for its metrics. Extensions report theirs the same way (Measurer), in
// their own words; the core knows none of them.

// MetricKind says how a metric's values behave.
type MetricKind string

// Kinds of metric.
const (
	MetricCounter   MetricKind = "counter"   // only goes up
	MetricGauge     MetricKind = "gauge"     // a current value
	MetricHistogram MetricKind = "histogram" // a distribution (Sample.Hist)
)

// Metric is one named metric with its current samples.
type Metric struct {
	Name  string // swarm_..., Prometheus style
	Help  string
	Kind  MetricKind
	Label string // the name of its one label, "" when it has none
	// Samples, one per value of the label (one with Label "" when the
	// metric has no label).
	Samples []Sample
}

// Sample is a metric's value for one value of its label.
type Sample struct {
	Label string
	Value float64
	Hist  *Histogram // MetricHistogram only
}

// Histogram is a distribution as Prometheus takes it.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending
	Counts []uint64  // observations at or below each bound (cumulative)
	Count  uint64
	Sum    float64
}

// Measurer is an extension that reports metrics of its own. Metrics is
// called on a scrape: it computes gauges then and must be quick.
type Measurer interface {
	Metrics() []Metric
}

// Metrics returns the core's metrics, then every extension's.
func (n *Node) Metrics() []Metric {
	out := n.stats.metrics()
	out = append(out, n.gauges()...)
	for _, name := range n.ext.names {
		if m, ok := n.ext.byName[name].(Measurer); ok {
			out = append(out, m.Metrics()...)
		}
	}
	return out
}

// gauges are computed now, from what the node holds anyway.
func (n *Node) gauges() []Metric {
	g := func(name, help string, v float64) Metric {
		return Metric{Name: name, Help: help, Kind: MetricGauge, Samples: []Sample{{Value: v}}}
	}
	n.mu.Lock()
	live := 0
	for _, s := range n.swarms {
		if !s.local.Left {
			live++
		}
	}
	n.mu.Unlock()
	out := []Metric{
		g("swarm_outbox_depth", "Deliveries queued: one per message and recipient not yet delivered or failed.", float64(n.out.pending())),
		g("swarm_swarms", "Swarms this node is a member of.", float64(live)),
		g("swarm_peer_connections_out", "QUIC connections this node holds open to peers.", float64(n.client.Conns())),
	}
	if n.server != nil {
		st := n.server.Stats()
		out = append(out,
			Metric{Name: "swarm_peer_connections_in", Help: "Connections peers hold to this node, by transport.", Kind: MetricGauge, Label: "transport",
				Samples: []Sample{{Label: "quic", Value: float64(st.QUICConns)}, {Label: "tcp", Value: float64(st.TCPConns)}}},
			Metric{Name: "swarm_peer_connections_refused_total", Help: "Connections refused by the connection caps, by transport.", Kind: MetricCounter, Label: "transport",
				Samples: []Sample{{Label: "quic", Value: float64(st.QUICRefused)}, {Label: "tcp", Value: float64(st.TCPRefused)}}})
	}
	if sp, err := n.st.Space(); err == nil {
		out = append(out,
			g("swarm_disk_free_bytes", "Free space of the file system holding the store.", float64(sp.Free)),
			g("swarm_disk_reserve_bytes", "Free space the store keeps: below it peers' messages are refused.", float64(sp.Reserve)))
	}
	ready := 0.0
	if n.Health().Status != HealthNotReady {
		ready = 1
	}
	out = append(out, g("swarm_ready", "1 when /healthz says the node is ready (or degraded), 0 when not ready.", ready))
	return out
}

// stats are the core's counters.
type stats struct {
	opened    time.Time     // when the node opened (health: peers not heard since)
	received  atomic.Uint64 // envelopes accepted into the inbox (and system messages)
	duplicate atomic.Uint64 // envelopes already seen
	sent      atomic.Uint64 // messages this node queued
	delivered atomic.Uint64 // deliveries acked by the recipient
	failed    atomic.Uint64 // deliveries given up (refused, expired, no address)
	rejected  [numRejectReasons]atomic.Uint64
	latency   histogram
}

// received counts a batch's verdicts.
func (s *stats) verdicts(res []wire.Result) {
	for _, r := range res {
		switch r.Status {
		case wire.Accepted:
			s.received.Add(1)
		case wire.Duplicate:
			s.duplicate.Add(1)
		case wire.Rejected:
			s.rejected[rejectReason(r.Reason)].Add(1)
		}
	}
}

// settled counts one settled delivery of message id; a delivered one
// adds its latency: from when the message was made (its ID is a UUIDv7,
// whose first 48 bits are that time in milliseconds) to the ack.
func (s *stats) settled(id, status string, now time.Time) {
	switch status {
	case Delivered:
		s.delivered.Add(1)
		if u, err := uuid.Parse(id); err == nil && u.Version() == 7 {
			sec, nsec := u.Time().UnixTime()
			if d := now.Sub(time.Unix(sec, nsec)); d >= 0 {
				s.latency.observe(d)
			}
		}
	case Failed:
		s.failed.Add(1)
	}
}

func (s *stats) metrics() []Metric {
	c := func(name, help string, v *atomic.Uint64) Metric {
		return Metric{Name: name, Help: help, Kind: MetricCounter, Samples: []Sample{{Value: float64(v.Load())}}}
	}
	rej := Metric{Name: "swarm_rejections_total", Help: "Envelopes from peers refused, by reason.", Kind: MetricCounter, Label: "reason"}
	at := map[string]int{} // two prefixes may share a label
	for i, r := range rejectReasons {
		v := float64(s.rejected[i].Load())
		if j, ok := at[r.label]; ok {
			rej.Samples[j].Value += v
			continue
		}
		at[r.label] = len(rej.Samples)
		rej.Samples = append(rej.Samples, Sample{Label: r.label, Value: v})
	}
	dl := Metric{Name: "swarm_deliveries_total", Help: "Deliveries of this node's messages settled, by result (one per message and recipient).", Kind: MetricCounter, Label: "result",
		Samples: []Sample{{Label: Delivered, Value: float64(s.delivered.Load())}, {Label: Failed, Value: float64(s.failed.Load())}}}
	h := s.latency.snapshot()
	return []Metric{
		c("swarm_messages_received_total", "Messages from peers stored in the inbox (and membership messages applied).", &s.received),
		c("swarm_messages_duplicate_total", "Envelopes from peers already stored (a resend after a lost ack).", &s.duplicate),
		c("swarm_messages_sent_total", "Messages this node queued for delivery.", &s.sent),
		dl, rej,
		{Name: "swarm_delivery_latency_seconds", Help: "From a message's creation to its recipient's ack, per delivered recipient (includes time queued while the peer was away).",
			Kind: MetricHistogram, Samples: []Sample{{Hist: &h}}},
	}
}

// rejectReasons are the labels of swarm_rejections_total: a fixed set, so
// a peer cannot grow the metric by choosing what it sends. A rejection's
// reason text is matched by its start (receive.go writes them); anything
// else is "invalid" (a message that does not parse or is out of its time
// window). "invalid" must stay last.
var rejectReasons = [numRejectReasons]struct{ prefix, label string }{
	{"this node is not in swarm", "not_member"},
	{"sender ", "not_member"}, // not a member (kicked, left) or leaving
	{"unknown signing key", "unknown_key"},
	{"too many bad signatures", "bad_signature"},
	{"bad signature", "bad_signature"},
	{"rate limited", "rate_limited"},
	{"over quota", "quota"},
	{"receiver could not store the message: it is low on disk space", "low_disk"},
	{"receiver could not store", "store_error"},
	{"", "invalid"},
}

const numRejectReasons = 10

func rejectReason(reason string) int {
	for i, r := range rejectReasons {
		if strings.HasPrefix(reason, r.prefix) {
			return i
		}
	}
	return len(rejectReasons) - 1
}

// latencyBounds are the buckets of the delivery latency, in seconds: a
// LAN ack takes milliseconds, a peer back from a night away hours.
var latencyBounds = [numBounds]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600}

const numBounds = 18

// histogram counts observations in latencyBounds, lock-free.
type histogram struct {
	buckets [numBounds + 1]atomic.Uint64 // the last one is +Inf
	count   atomic.Uint64
	sumNS   atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNS.Add(uint64(min(d, time.Duration(math.MaxInt64))))
	h.count.Add(1)
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: latencyBounds[:], Counts: make([]uint64, len(latencyBounds))}
	var cum uint64
	for i := range latencyBounds {
		cum += h.buckets[i].Load()
		out.Counts[i] = cum
	}
	// Count is read after the buckets and at least their sum, so the
	// +Inf bucket is never below the last bound's.
	out.Count = max(h.count.Load(), cum+h.buckets[len(latencyBounds)].Load())
	out.Sum = float64(h.sumNS.Load()) / 1e9
	return out
}
