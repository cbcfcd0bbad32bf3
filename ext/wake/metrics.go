package wake

import (
	"sync"

	"github.com/agent-swarm/agent-swarm/node"
)

// wakeStatuses are the statuses a wake's history record ends with: the
// label values of swarm_wakes_total, fixed so the metric cannot grow.
var wakeStatuses = []string{"ok", "failed", "timeout", "skipped"}

// counts counts the wakes this process ran, by status, as their history
// records are written (countingBook).
type counts struct {
	mu sync.Mutex
	by map[string]int
}

func (c *counts) add(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]int{}
	}
	c.by[status]++
}

func (c *counts) get(status string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return float64(c.by[status])
}

// countingBook counts each record on its way to the history.
type countingBook struct {
	Book
	c *counts
}

func (b countingBook) Add(r Record) error {
	b.c.add(r.Status)
	return b.Book.Add(r)
}

// Running is how many wakes run now.
func (e *Engine) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.running)
}

// Metrics (node.Measurer): wakes run by this daemon since it started, and
// those running now. A node that runs no engine (not the daemon) reports
// nothing: its zeros would hide the daemon's figures.
func (x *ext) Metrics() []node.Metric {
	if x.engine == nil {
		return nil
	}
	total := node.Metric{Name: "swarm_wakes_total", Kind: node.MetricCounter, Label: "status",
		Help: "Wakes of the agent (headless Claude Code sessions) since the daemon started, by how they ended; skipped ones were held back by a limit."}
	for _, s := range wakeStatuses {
		total.Samples = append(total.Samples, node.Sample{Label: s, Value: x.counts.get(s)})
	}
	enabled := 0.0
	if x.engine.Enabled() {
		enabled = 1
	}
	return []node.Metric{total,
		{Name: "swarm_wakes_running", Kind: node.MetricGauge, Help: "Wakes running now.", Samples: []node.Sample{{Value: float64(x.engine.Running())}}},
		{Name: "swarm_wakes_enabled", Kind: node.MetricGauge, Help: "1 when wakes are on.", Samples: []node.Sample{{Value: enabled}}},
	}
}
