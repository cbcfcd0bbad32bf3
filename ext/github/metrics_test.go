package github

import (
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/store"
)

// TestQueueMetrics: the queue gauge counts the writes the store holds,
// pending and given up, whether or not this process made the client.
func TestQueueMetrics(t *testing.T) {
	n := scOpen(t, scHome(t, "a.test"))
	depth := func(state string) float64 {
		for _, m := range ghOf(t, n).Metrics() {
			if m.Name != "swarm_github_queue_depth" || m.Kind != node.MetricGauge {
				continue
			}
			for _, s := range m.Samples {
				if s.Label == state {
					return s.Value
				}
			}
		}
		return -1
	}
	if depth("pending") != 0 || depth("dead") != 0 {
		t.Fatalf("empty queue: pending %v dead %v", depth("pending"), depth("dead"))
	}
	must0(t, n.Store().Update(func(tx *store.Tx) error {
		for _, k := range []string{prefixQueue + "1", prefixQueue + "2", prefixDead + "3"} {
			if err := tx.Put([]byte(k), Write{}); err != nil {
				return err
			}
		}
		return nil
	}))
	if depth("pending") != 2 || depth("dead") != 1 {
		t.Fatalf("two pending, one dead: pending %v dead %v", depth("pending"), depth("dead"))
	}
}
