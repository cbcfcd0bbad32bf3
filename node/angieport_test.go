package node

import (
	"net"
	"strconv"
	"testing"
)

// TestAngieListen: agents that share a host get distinct loopback ports
// without being told, the same domain the same port, and a taken port is
// skipped.
func TestAngieListen(t *testing.T) {
	a, b := angieListen("agent-a.example.com"), angieListen("agent-b.example.com")
	if a == b {
		t.Fatalf("two agents got the same port %s", a)
	}
	if again := angieListen("agent-a.example.com"); again != a {
		t.Fatalf("same domain, different port: %s then %s", a, again)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Skipf("%s is in use here: %v", a, err)
	}
	defer l.Close()
	if next := angieListen("agent-a.example.com"); next == a {
		t.Fatalf("picked %s, which is in use", next)
	}
	for _, d := range []string{"agent-a.example.com", "x.test", "very-long-name.agents.example.org"} {
		host, port, _ := net.SplitHostPort(angieListen(d))
		if p, _ := strconv.Atoi(port); host != "127.0.0.1" || p < angiePortBase || p >= angiePortBase+angiePortRange {
			t.Errorf("%s: %s:%s, want 127.0.0.1 and a port in 7080-7979", d, host, port)
		}
	}
}
