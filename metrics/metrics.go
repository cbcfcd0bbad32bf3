// Package metrics serves a node's metrics to Prometheus: /metrics on a
// loopback-only listener (`swarm serve --metrics 127.0.0.1:PORT`). The
// node counts (node.Metrics: the core's counters and gauges, then every
// extension's, node.Measurer); this package only turns them into the
// exposition format on each scrape. Nothing runs between scrapes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Source is what the metrics are read from: a *node.Node.
type Source interface {
	Metrics() []node.Metric
}

// collector reads the node's metrics at each scrape. It describes none
// up front (an "unchecked" collector): which metrics exist depends on the
// extensions the binary includes.
type collector struct {
	src Source
	log zerolog.Logger
}

func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.src.Metrics() {
		var labels []string
		if m.Label != "" {
			labels = []string{m.Label}
		}
		desc := prometheus.NewDesc(m.Name, m.Help, labels, nil)
		for _, s := range m.Samples {
			pm, err := constMetric(desc, m, s, labels)
			if err != nil {
				c.log.Error().Err(err).Str("metric", m.Name).Msg("metric not exported")
				continue
			}
			ch <- pm
		}
	}
}

func constMetric(desc *prometheus.Desc, m node.Metric, s node.Sample, labels []string) (prometheus.Metric, error) {
	var lv []string
	if len(labels) > 0 {
		lv = []string{s.Label}
	}
	switch m.Kind {
	case node.MetricCounter:
		return prometheus.NewConstMetric(desc, prometheus.CounterValue, s.Value, lv...)
	case node.MetricGauge:
		return prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.Value, lv...)
	case node.MetricHistogram:
		if s.Hist == nil || len(s.Hist.Bounds) != len(s.Hist.Counts) {
			return nil, errors.New("histogram without matching bounds and counts")
		}
		buckets := make(map[float64]uint64, len(s.Hist.Bounds))
		for i, b := range s.Hist.Bounds {
			buckets[b] = s.Hist.Counts[i]
		}
		return prometheus.NewConstHistogram(desc, s.Hist.Count, s.Hist.Sum, buckets, lv...)
	}
	return nil, fmt.Errorf("unknown kind %q", m.Kind)
}

// Handler serves the exposition format: the node's metrics, and the Go
// runtime's and the process's (memory, goroutines, file descriptors).
// Requests must name a loopback host (checkHost).
func Handler(src Source, log zerolog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src: src, log: log},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkHost(r.Host); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// CheckListen refuses an address that is not loopback: the metrics say
// how busy the node is and with how many peers, which is the operator's
// business. A scraper on another host goes through a proxy the operator
// sets up (docs/deploy.md).
func CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid metrics listen address %q: want 127.0.0.1:PORT", addr)
	}
	if !node.LoopbackHost(host) {
		return fmt.Errorf("metrics listen address %s is not loopback: metrics are served on 127.0.0.1 or [::1] only", addr)
	}
	return nil
}

// checkHost refuses a request whose Host is not loopback: a web page the
// user visits could otherwise make the browser fetch the metrics through
// a DNS name rebound to 127.0.0.1.
func checkHost(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if node.LoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("host %q is not allowed: use 127.0.0.1", host)
}

// Serve serves Handler on addr (CheckListen first) until stop is called.
// It returns the bound address (addr may name port 0).
func Serve(addr string, src Source, log zerolog.Logger) (bound string, stop func(), err error) {
	if err := CheckListen(addr); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics listen: %w", err)
	}
	srv := node.LocalHTTPServer(Handler(src, log))
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
