package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/agent-swarm/agent-swarm/bench"
)

// cmdBench is `swarm bench`: its flags become the options of package
// bench, which does the measuring. Flag mistakes are usage errors here,
// named by flag, before anything starts.
func cmdBench(ctx context.Context, g globals, f flagMap, stdout, stderr io.Writer) error {
	if f["load"] == "true" {
		lo, err := loadFlags(f)
		if err != nil {
			return err
		}
		return bench.Load(ctx, lo, stdout, stderr)
	}
	o, err := benchFlags(f)
	if err != nil {
		return err
	}
	o.JSON = g.json
	return bench.Run(ctx, o, stdout, stderr)
}

// benchFlags reads the flags of a run without --load.
func benchFlags(f flagMap) (bench.Options, error) {
	if f["rate"] != "" || f["duration"] != "" {
		return bench.Options{}, usagef("bench: --rate and --duration go with --load")
	}
	o := bench.Options{Quick: f["quick"] == "true", Swarm100: f["swarm100"] == "true"}
	if v := f["n"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > bench.MaxN {
			return o, usagef("--n must be 1..%d", bench.MaxN)
		}
		o.N = n
	}
	return o, nil
}

// loadFlags reads the flags of `swarm bench --load`, which takes only
// --rate and --duration beside it.
func loadFlags(f flagMap) (bench.LoadOptions, error) {
	var lo bench.LoadOptions
	for k := range f {
		if k != "load" && k != "rate" && k != "duration" {
			return lo, usagef("bench --load: --%s does not go with --load", k)
		}
	}
	if v := f["rate"]; v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < 1 || r > bench.MaxRate {
			return lo, usagef("--rate must be 1..%d messages per second", bench.MaxRate)
		}
		lo.Rate = r
	}
	if v := f["duration"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < bench.MinLoadDuration || d > bench.MaxLoadDuration {
			return lo, usagef("--duration must be 1s..1h") // bench.MinLoadDuration..MaxLoadDuration
		}
		lo.Duration = d
	}
	return lo, nil
}

// cmdBenchPeer is the hidden child the bench starts as its raw HTTP/3
// baseline server.
func cmdBenchPeer(ctx context.Context, f flagMap, stdout io.Writer) error {
	return bench.Peer(ctx, f["dir"], stdout)
}
