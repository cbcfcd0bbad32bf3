package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/bench"
)

// TestBenchFlags: bad or misplaced flags are usage errors (exit 2, and
// no bench runs).
func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--frob"}, {"--rate", "10"}, {"--load", "--rate", "0"}, {"--load", "--duration", "1ms"}, {"--load", "--quick"},
		{"--n", "0"}, {"--n", "many"}, {"--n", "100001"}, {"--load", "--rate", "fast"}, {"--load", "--duration", "2h"}} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--home", t.TempDir(), "bench"}, args...), strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "--") || out.Len() != 0 {
			t.Errorf("bench %v: exit %d, stderr %q, stdout %q; want a usage error", args, code, errb.String(), out.String())
		}
	}
}

// TestBenchFlagsOptions: the flags of `swarm bench` reach package bench
// as the options they name; what is not given stays zero (bench's default).
func TestBenchFlagsOptions(t *testing.T) {
	for _, c := range []struct {
		f    flagMap
		want bench.Options
	}{
		{flagMap{}, bench.Options{}},
		{flagMap{"quick": "true"}, bench.Options{Quick: true}},
		{flagMap{"swarm100": "true", "n": "250"}, bench.Options{Swarm100: true, N: 250}},
		{flagMap{"quick": "true", "swarm100": "true", "n": "1"}, bench.Options{Quick: true, Swarm100: true, N: 1}},
	} {
		got, err := benchFlags(c.f)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("benchFlags(%v) = %+v, %v; want %+v", c.f, got, err, c.want)
		}
	}
	for _, c := range []struct {
		f    flagMap
		want bench.LoadOptions
	}{
		{flagMap{"load": "true"}, bench.LoadOptions{}},
		{flagMap{"load": "true", "rate": "200", "duration": "3s"}, bench.LoadOptions{Rate: 200, Duration: 3 * time.Second}},
		{flagMap{"load": "true", "duration": "1h"}, bench.LoadOptions{Duration: time.Hour}},
	} {
		got, err := loadFlags(c.f)
		if err != nil || got != c.want {
			t.Errorf("loadFlags(%v) = %+v, %v; want %+v", c.f, got, err, c.want)
		}
	}
}
