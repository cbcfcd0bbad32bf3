package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
)

// TestSizes: the presets, --n over them (fan-outs get a fifth), the
// swarm of 100 (20 when quick), and round trips out of range refused.
func TestSizes(t *testing.T) {
	for _, c := range []struct {
		o                   Options
		n, fanN, fanout     int
		fanBig, s100, s100N int
		wantErr             bool
	}{
		{o: Options{}, n: 1000, fanN: 200, fanout: 10, fanBig: 50},
		{o: Options{Quick: true}, n: 30, fanN: 10, fanout: 3, fanBig: 6},
		{o: Options{N: 50}, n: 50, fanN: 10, fanout: 10, fanBig: 50},
		{o: Options{Quick: true, N: 3}, n: 3, fanN: 1, fanout: 3, fanBig: 6},
		{o: Options{Swarm100: true}, n: 1000, fanN: 200, fanout: 10, fanBig: 50, s100: 100, s100N: 10},
		{o: Options{Quick: true, Swarm100: true}, n: 30, fanN: 10, fanout: 3, fanBig: 6, s100: 20, s100N: 3},
		{o: Options{N: -1}, wantErr: true},
		{o: Options{N: MaxN + 1}, wantErr: true},
	} {
		s, err := c.o.sizes()
		if c.wantErr {
			if err == nil {
				t.Errorf("%+v: no error", c.o)
			}
			continue
		}
		if err != nil || s.n != c.n || s.fanN != c.fanN || s.fanout != c.fanout || s.fanBig != c.fanBig || s.s100 != c.s100 || s.s100N != c.s100N {
			t.Errorf("%+v: sizes %+v, %v", c.o, s, err)
		}
	}
}

// TestLoadDefaults: zero options are 1000 msg/s for 60 s; a rate or a
// duration out of range is refused before any daemon starts.
func TestLoadDefaults(t *testing.T) {
	o, err := LoadOptions{}.withDefaults()
	if err != nil || o.Rate != 1000 || o.Duration != 60*time.Second {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	for _, bad := range []LoadOptions{{Rate: -1}, {Rate: MaxRate + 1}, {Duration: time.Millisecond}, {Duration: 2 * time.Hour}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
		if err := Load(context.Background(), bad, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("Load(%+v): no error", bad)
		}
	}
}

// TestWriteRows: the table people read (a row without baseline shows
// "-") and the JSON array --json prints.
func TestWriteRows(t *testing.T) {
	rows := []row{
		{Metric: "direct message p50 (vs raw POST)", Unit: "ms", Baseline: 0.25, Node: 0.5, Ratio: 2, Target: "<= 2.0x"},
		{Metric: "throughput", Unit: "msg/s", Baseline: 20000, Node: 12000.4, Ratio: 0.6, Target: ">= 0.50x raw"},
		{Metric: "idle daemon RSS (vs raw server)", Unit: "MB", Baseline: 10.04, Node: 20.06, Ratio: 1.998, Target: "node <= 30 MB"},
		{Metric: "20-swarm: all list a new member after", Unit: "ms", Node: 12.5, Target: "report"},
		{Metric: "idle CPU, no swarms", Unit: unitCPU, Node: 0.05, Target: "<= 0.05%"},
		{Metric: "CPU per message, receiver", Unit: "us", Baseline: 40, Node: 120, Ratio: 3, Target: "report"},
	}
	var out bytes.Buffer
	if err := writeRows(&out, rows, false); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"metric                                             baseline           node    ratio  target\n" +
		"direct message p50 (vs raw POST)                   0.250 ms       0.500 ms    2.00x  <= 2.0x\n" +
		"throughput                                      20000 msg/s    12000 msg/s    0.60x  >= 0.50x raw\n" +
		"idle daemon RSS (vs raw server)                     10.0 MB        20.1 MB    2.00x  node <= 30 MB\n" +
		"20-swarm: all list a new member after                     -      12.500 ms        -  report\n" +
		"idle CPU, no swarms                                 0.000 %        0.050 %        -  <= 0.05%\n" +
		"CPU per message, receiver                             40 us         120 us    3.00x  report\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := writeRows(&out, rows[:1], true); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	wantJSON := map[string]any{"metric": "direct message p50 (vs raw POST)", "unit": "ms", "baseline": 0.25, "node": 0.5, "ratio": 2.0, "target": "<= 2.0x"}
	if len(got) != 1 || len(got[0]) != len(wantJSON) {
		t.Fatalf("json %s", out.String())
	}
	for k, v := range wantJSON {
		if got[0][k] != v {
			t.Errorf("json %s = %v, want %v", k, got[0][k], v)
		}
	}
}

// TestPeer: the raw server prints its address, answers a POST with 200
// over the pinned HTTP/3 transport, and returns when its context ends; it
// refuses to start without a directory.
func TestPeer(t *testing.T) {
	if err := Peer(context.Background(), "", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("no dir: %v", err)
	}
	b := &bencher{tmp: t.TempDir()}
	dir, pin, err := b.rawDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() { done <- Peer(ctx, dir, w); w.Close() }()
	addr, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	client := transport.NewClient(transport.ClientOptions{})
	defer client.Close()
	if err := rawPOST(ctx, client, transport.Peer{Addr: strings.TrimSpace(addr), Pin: pin}, strings.Repeat("x", 512)); err != nil {
		t.Errorf("POST: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Peer after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Peer still running 5 s after its context ended")
	}
}
