package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ticksPerSecond is USER_HZ, the unit of CPU times in /proc/PID/stat: 100
// on every Linux (the kernel's ABI, whatever its internal HZ).
const ticksPerSecond = 100

// cpuTicks is the CPU time (user + system, all threads) that process pid
// has used so far, in ticks of 10 ms.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields counted start after its last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return ut + st, nil
}

// cpuMeter counts the ticks some processes use between start and stop.
type cpuMeter struct {
	pids []int
	t0   []int64
	at   time.Time
}

func startCPU(pids ...int) (*cpuMeter, error) {
	m := &cpuMeter{pids: pids, t0: make([]int64, len(pids)), at: time.Now()}
	for i, p := range pids {
		t, err := cpuTicks(p)
		if err != nil {
			return nil, err
		}
		m.t0[i] = t
	}
	return m, nil
}

// stop returns each process's ticks since start, and the time that passed.
func (m *cpuMeter) stop() ([]int64, time.Duration, error) {
	d := time.Since(m.at)
	out := make([]int64, len(m.pids))
	for i, p := range m.pids {
		t, err := cpuTicks(p)
		if err != nil {
			return nil, 0, err
		}
		out[i] = t - m.t0[i]
	}
	return out, d, nil
}

// pctOfCore is ticks over d as a percentage of one core.
func pctOfCore(ticks int64, d time.Duration) float64 {
	return float64(ticks) / ticksPerSecond / d.Seconds() * 100
}

// usPer is ticks as microseconds of CPU per one of n things.
func usPer(ticks int64, n int) float64 {
	return float64(ticks) * (1e6 / ticksPerSecond) / float64(n)
}

// idleProc is a process whose idle CPU the bench reports.
type idleProc struct {
	metric, target string
	pid            int
}

// idleCPU counts, over the same window d of nothing sent, the CPU ticks
// of each idle process beside those of the raw server (rawPID), and
// returns one row per process.
func idleCPU(ctx context.Context, d time.Duration, rawPID int, procs []idleProc) ([]row, error) {
	pids := []int{rawPID}
	for _, p := range procs {
		pids = append(pids, p.pid)
	}
	m, err := startCPU(pids...)
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, d); err != nil {
		return nil, err
	}
	ticks, took, err := m.stop()
	if err != nil {
		return nil, err
	}
	raw := pctOfCore(ticks[0], took)
	var rows []row
	for i, p := range procs {
		v := pctOfCore(ticks[i+1], took)
		r := row{Metric: p.metric, Unit: unitCPU, Baseline: raw, Node: v,
			Target: fmt.Sprintf("%s (%d vs %d ticks in %s)", p.target, ticks[i+1], ticks[0], took.Round(time.Second))}
		if raw > 0 {
			r.Ratio = v / raw
		}
		rows = append(rows, r)
	}
	return rows, nil
}
