package github

import (
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/store"
)

// Metrics (node.Measurer): the durable write queue, counted from the
// store on a scrape, whether or not this process has made the GitHub
// client yet (a daemon resumes the queue a one-shot command filled).
func (e *Ext) Metrics() []node.Metric {
	count := func(prefix string) float64 {
		n := 0
		_ = e.n.Store().View(func(tx *store.Tx) error {
			return tx.Scan([]byte(prefix), nil, func([]byte, func(any) error) (bool, error) {
				n++
				return true, nil
			})
		})
		return float64(n)
	}
	return []node.Metric{{
		Name: "swarm_github_queue_depth", Kind: node.MetricGauge, Label: "state",
		Help: "GitHub writes in the durable queue: pending (to be made or retried) and dead (refused for good, kept for a look).",
		Samples: []node.Sample{
			{Label: "pending", Value: count(prefixQueue)},
			{Label: "dead", Value: count(prefixDead)},
		},
	}}
}
