package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/localapi"
	"github.com/agent-swarm/agent-swarm/node/transport"
)

// Limits of LoadOptions.
const (
	MaxRate         = 100000
	MinLoadDuration = time.Second
	MaxLoadDuration = time.Hour
)

// LoadOptions size one run of Load.
type LoadOptions struct {
	Rate     int           // messages per second, all daemons together, 1..MaxRate; 0: 1000
	Duration time.Duration // how long sends are issued, MinLoadDuration..MaxLoadDuration; 0: 60 s
}

// withDefaults fills the zero fields, or says which is out of range.
func (o LoadOptions) withDefaults() (LoadOptions, error) {
	if o.Rate == 0 {
		o.Rate = 1000
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.Rate < 1 || o.Rate > MaxRate {
		return o, fmt.Errorf("bench --load: rate %d is outside 1..%d messages per second", o.Rate, MaxRate)
	}
	if o.Duration < MinLoadDuration || o.Duration > MaxLoadDuration {
		return o, fmt.Errorf("bench --load: duration %s is outside %s..%s", o.Duration, MinLoadDuration, MaxLoadDuration)
	}
	return o, nil
}

const (
	loadDaemons     = 3
	loadWorkers     = 16 // local API calls in flight per daemon
	loadDrainLimit  = 60 * time.Second
	loadSampleEvery = 5 * time.Second
)

// Load runs three `swarm serve` daemons (default config) in one swarm
// under a paced load and reports to stdout their RSS over time and
// whether every message arrived exactly once; it fails if any was lost or
// duplicated. Every child is stopped and every home removed before it
// returns.
func Load(ctx context.Context, o LoadOptions, stdout, stderr io.Writer) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	b, err := newBencher(stderr)
	if err != nil {
		return err
	}
	defer b.close()
	return b.load(ctx, o, stdout)
}

// loadDaemon is one `swarm serve` of the load run.
type loadDaemon struct {
	home, domain string
	cmd          *exec.Cmd
	api          *localapi.Client
	rssMin       float64
	rssMax       float64
}

// call runs an operation on the daemon's local API, bounded in time, and
// decodes its result into out (unless nil).
func (d *loadDaemon) call(ctx context.Context, op string, args map[string]any, out any) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := d.api.Call(cctx, op, args)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", d.domain, op, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func (d *loadDaemon) sampleRSS() float64 {
	v, err := rssMB(d.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	if d.rssMin == 0 || v < d.rssMin {
		d.rssMin = v
	}
	d.rssMax = max(d.rssMax, v)
	return v
}

// load runs three `swarm serve` daemons (default config) in one swarm and
// drives broadcasts through their local APIs, round-robin, at lo.Rate for
// lo.Duration; it samples each daemon's RSS every 5 s, waits for the outboxes
// to drain, then reads every inbox and fails if any message was lost or
// duplicated (or a send failed).
func (b *bencher) load(ctx context.Context, lo LoadOptions, stdout io.Writer) error {
	ds := make([]*loadDaemon, loadDaemons)
	for k := range ds {
		port, err := transport.FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		name := fmt.Sprintf("load%d", k)
		home := filepath.Join(b.tmp, name)
		if _, err := node.Init(home, node.InitOptions{Domain: name + ".bench", Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
			return err
		}
		cmd, err := b.startServe(home)
		if err != nil {
			return err
		}
		ds[k] = &loadDaemon{home: home, domain: name + ".bench", cmd: cmd}
	}
	for _, d := range ds {
		if err := b.waitReady(ctx, d.home); err != nil {
			return err
		}
		api, err := localapi.Dial(filepath.Join(d.home, node.SocketFile))
		if err != nil {
			return err
		}
		d.api = api
	}
	const swarm = "load"
	if err := ds[0].call(ctx, "create", map[string]any{"name": swarm}, nil); err != nil {
		return err
	}
	var inv node.InviteInfo
	if err := ds[0].call(ctx, "invite", map[string]any{"swarm": swarm, "uses": loadDaemons - 1}, &inv); err != nil {
		return err
	}
	for _, d := range ds[1:] {
		if err := d.call(ctx, "join", map[string]any{"token": inv.Token}, nil); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range ds {
		for {
			var ms []node.MemberInfo
			if err := d.call(ctx, "members", map[string]any{"swarm": swarm}, &ms); err != nil {
				return err
			}
			if len(ms) == loadDaemons {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s lists %d members, not %d, after 30 s", d.domain, len(ms), loadDaemons)
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}

	total := int(float64(lo.Rate) * lo.Duration.Seconds())
	fmt.Fprintf(stdout, "load: %d daemons in one swarm; broadcasts of 512 B through the local APIs, round-robin, %d/s for %s (at most %d)\n",
		loadDaemons, lo.Rate, lo.Duration, total)

	// Sampler: every 5 s, each daemon's RSS and outbox, until stopped.
	var mu sync.Mutex // guards sent, errs, the daemons' RSS figures
	sent := make([]map[int]bool, loadDaemons)
	for k := range sent {
		sent[k] = map[int]bool{}
		ds[k].sampleRSS()
	}
	var errs []error
	nsent := func() int {
		c := 0
		for _, m := range sent {
			c += len(m)
		}
		return c
	}
	start := time.Now()
	sample := func() {
		var rss, outs []string
		for _, d := range ds {
			var st node.Status
			out := "?"
			if err := d.call(ctx, "status", nil, &st); err == nil {
				out = strconv.Itoa(st.Outbox)
			}
			outs = append(outs, out)
		}
		var anon []string
		mu.Lock()
		for _, d := range ds {
			rss = append(rss, fmt.Sprintf("%.1f", d.sampleRSS()))
			a, _ := statusMB(d.cmd.Process.Pid, "RssAnon:")
			anon = append(anon, fmt.Sprintf("%.1f", a))
		}
		n := nsent()
		mu.Unlock()
		fmt.Fprintf(stdout, "load: %4.0fs sent %7d  outbox %s  RSS %s MB (anon %s)\n", time.Since(start).Seconds(), n,
			strings.Join(outs, "/"), strings.Join(rss, "/"), strings.Join(anon, "/"))
	}
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(loadSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample()
			case <-stopSampler:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampler:
		default:
			close(stopSampler)
		}
		<-samplerDone
	}()

	// Workers: loadWorkers calls in flight per daemon.
	body := func(k, i int) string {
		s := fmt.Sprintf("load d%d %d ", k, i)
		return s + strings.Repeat("x", max(512-len(s), 0))
	}
	jobs := make([]chan int, loadDaemons)
	var wg sync.WaitGroup
	for k := range jobs {
		jobs[k] = make(chan int, loadWorkers)
		for w := 0; w < loadWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs[k] {
					err := ds[k].call(ctx, "send", map[string]any{"swarm": swarm, "body": body(k, i)}, nil)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						sent[k][i] = true
					}
					mu.Unlock()
				}
			}()
		}
	}
	// Pacer: message i is due at start + i/rate; nothing is issued after
	// start + dur, whatever is left of total.
	end := start.Add(lo.Duration)
	every := float64(time.Second) / float64(lo.Rate)
pace:
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) * every))
		if due.After(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs[i%loadDaemons] <- i:
		case <-ctx.Done():
			break pace
		case <-time.After(time.Until(end)):
			break pace
		}
	}
	for _, j := range jobs {
		close(j)
	}
	wg.Wait()
	sendTime := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}

	// Drain: every outbox empty, within loadDrainLimit.
	t0 := time.Now()
	drained := false
	for !drained && time.Since(t0) < loadDrainLimit {
		drained = true
		for _, d := range ds {
			var st node.Status
			if err := d.call(ctx, "status", nil, &st); err != nil {
				return err
			}
			drained = drained && st.Outbox == 0
		}
		if !drained {
			if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	drainTime := time.Since(t0)
	close(stopSampler)
	<-samplerDone
	sample()

	// Count every inbox: unread pages of 1000, each marked read after.
	var lost, dups, unexpected, delivered, expected int
	for k, d := range ds {
		exp := 0
		for s := range ds {
			if s != k {
				exp += len(sent[s])
			}
		}
		expected += exp
		seen := map[[2]int]int{}
		ids := map[string]bool{}
		for page := 0; page < exp/1000+20; page++ {
			var msgs []node.InboxMessage
			if err := d.call(ctx, "inbox", map[string]any{"unread": true, "include_muted": true, "limit": 1000}, &msgs); err != nil {
				return err
			}
			if len(msgs) == 0 {
				break
			}
			var pageIDs []string
			for _, m := range msgs {
				if ids[m.ID] {
					return fmt.Errorf("%s: message %s listed unread again after it was marked read", d.domain, m.ID)
				}
				ids[m.ID] = true
				pageIDs = append(pageIDs, m.ID)
				if m.Local {
					continue // the node's own notice (a daemon joined), not a peer's message
				}
				var s, i int
				if n, _ := fmt.Sscanf(m.Body, "load d%d %d ", &s, &i); n != 2 || s < 0 || s >= loadDaemons || m.From != ds[s].domain {
					unexpected++
					continue
				}
				seen[[2]int{s, i}]++
			}
			if err := d.call(ctx, "read", map[string]any{"ids": pageIDs}, nil); err != nil {
				return err
			}
		}
		for key, c := range seen {
			if !sent[key[0]][key[1]] {
				unexpected += c
				continue
			}
			delivered++
			dups += c - 1
		}
		for s := range ds {
			if s == k {
				continue
			}
			for i := range sent[s] {
				if seen[[2]int{s, i}] == 0 {
					lost++
				}
			}
		}
	}
	n := nsent()
	fmt.Fprintf(stdout, "sent %d (send errors %d) in %.1fs: %.0f/s achieved of %d/s asked\n", n, len(errs), sendTime.Seconds(),
		float64(n)/sendTime.Seconds(), lo.Rate)
	fmt.Fprintf(stdout, "delivered %d of %d expected; lost %d, duplicated %d, unexpected %d; outboxes drained %v after %.1fs\n",
		delivered, expected, lost, dups, unexpected, drained, drainTime.Seconds())
	for _, d := range ds {
		fmt.Fprintf(stdout, "RSS %s: min %.1f MB, max %.1f MB\n", d.domain, d.rssMin, d.rssMax)
	}
	var bad []string
	if lost > 0 {
		bad = append(bad, fmt.Sprintf("%d lost", lost))
	}
	if dups > 0 {
		bad = append(bad, fmt.Sprintf("%d duplicated", dups))
	}
	if len(errs) > 0 {
		bad = append(bad, fmt.Sprintf("%d sends failed (first: %v)", len(errs), errs[0]))
	}
	if !drained {
		bad = append(bad, fmt.Sprintf("outboxes not drained after %s", loadDrainLimit))
	}
	if len(bad) > 0 {
		return fmt.Errorf("load: %s", strings.Join(bad, ", "))
	}
	return nil
}
