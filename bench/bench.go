// Package bench is `swarm bench`: it measures the node against baselines
// of raw HTTP/3 and of NATS JetStream on one machine and prints the
// ratios. Every peer it measures against is a separate process of the
// swarm binary (a daemon, the CLI, `swarm mcp`, or the raw server
// PeerCommand runs) or, for JetStream, of bench/jetstream (jetstream.go),
// so the figures include what a user's processes pay; the package knows
// those binaries only by their command lines.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// PeerCommand is the hidden command of the swarm binary that runs Peer:
// the bench starts it as a child, and cmd/swarm declares it by this name.
const PeerCommand = "bench-peer"

// MaxN is the most round trips one run times.
const MaxN = 100000

// Options choose one run of Run.
type Options struct {
	Quick    bool // fewer rounds of everything: seconds, not minutes
	Swarm100 bool // also an in-process swarm of 100 nodes (20 with Quick)
	// N round trips to time, 1..MaxN (the fan-outs get N/5); 0 keeps the
	// default, 1000 (30 with Quick).
	N    int
	JSON bool // the rows as one JSON array instead of the table
}

// sizes size one run: what Options ask, in counts.
type sizes struct {
	n, fanN, fanout int
	// fanBig members (and raw servers) for the large fan-out, fanBigN
	// round trips of it; tput messages for the throughput rows; idlePeers
	// members of the swarm of the idle-with-peers daemon; readyRuns starts
	// of `swarm serve` for time to ready.
	fanBig, fanBigN, tput, idlePeers, readyRuns int
	idleFor                                     time.Duration
	// idleCPU is the window over which idle processes' CPU ticks are
	// counted (the targets are over 60 s).
	idleCPU time.Duration
	// swarm100: the in-process swarm of s100 nodes (0: skipped).
	s100, s100N int
}

// sizes turns o into counts, or says which option is out of range.
func (o Options) sizes() (sizes, error) {
	s := sizes{n: 1000, fanN: 200, fanout: 10, fanBig: 50, fanBigN: 30, tput: 5000, idlePeers: 50, readyRuns: 5, idleFor: 10 * time.Second, idleCPU: 60 * time.Second}
	if o.Quick {
		s = sizes{n: 30, fanN: 10, fanout: 3, fanBig: 6, fanBigN: 5, tput: 300, idlePeers: 10, readyRuns: 3, idleFor: 2 * time.Second, idleCPU: 3 * time.Second}
	}
	if o.Swarm100 {
		s.s100, s.s100N = 100, 10
		if o.Quick {
			s.s100, s.s100N = 20, 3
		}
	}
	if o.N < 0 || o.N > MaxN {
		return s, fmt.Errorf("bench: %d round trips is outside 1..%d", o.N, MaxN)
	}
	if o.N > 0 {
		s.n, s.fanN = o.N, max(o.N/5, 1)
	}
	return s, nil
}

// Run measures, in one run on one machine, a baseline of raw HTTP/3
// beside the node, and prints the rows to stdout (progress goes to
// stderr). Every child is stopped and every home removed before it
// returns.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	s, err := o.sizes()
	if err != nil {
		return err
	}
	b, err := newBencher(stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rows, err := b.run(ctx, s)
	if err != nil {
		return err
	}
	return writeRows(stdout, rows, o.JSON)
}

// row is one line of the result: a metric of the node beside its
// baseline. Its JSON is what `swarm bench --json` prints.
type row struct {
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline"`
	Node     float64 `json:"node"`
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target"`
}

func (r row) fmt(v float64) string {
	switch r.Unit {
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "msg/s":
		return fmt.Sprintf("%.0f msg/s", v)
	case unitCPU:
		return fmt.Sprintf("%.3f %%", v)
	case "us":
		return fmt.Sprintf("%.0f us", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

// unitCPU is the unit of idle CPU rows: percent of one core.
const unitCPU = "%core"

// writeRows prints the table (a row without baseline shows "-" for it and
// its ratio; a CPU row whose baseline used nothing shows 0 and no ratio),
// or under asJSON the rows as one JSON array.
func writeRows(w io.Writer, rows []row, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(rows)
	}
	fmt.Fprintf(w, "%-44s %14s %14s %8s  %s\n", "metric", "baseline", "node", "ratio", "target")
	for _, r := range rows {
		ratio := fmt.Sprintf("%7.2fx", r.Ratio)
		base := r.fmt(r.Baseline)
		if r.Baseline == 0 {
			ratio = "      -"
			if r.Unit != unitCPU {
				base = "-"
			}
		}
		if _, err := fmt.Fprintf(w, "%-44s %14s %14s %8s  %s\n", r.Metric, base, r.fmt(r.Node), ratio, r.Target); err != nil {
			return err
		}
	}
	return nil
}

// quantileRow is a row of the q quantiles of two timings.
func quantileRow(metric string, base, got []time.Duration, q float64, target string) row {
	b, n := quantile(base, q), quantile(got, q)
	return row{Metric: metric, Unit: "ms", Baseline: b, Node: n, Ratio: n / b, Target: target}
}

// quantile is the q quantile of ds in milliseconds.
func quantile(ds []time.Duration, q float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
