package transport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort returns a port free for both UDP and TCP on host, for local and
// test nodes. It picks below the kernel's ephemeral range: a port the
// kernel hands to outgoing connections could be taken between this check
// and the node binding it, one outside that range cannot.
func FreePort(host string) (int, error) {
	lo, hi := 20000, ephemeralLow()-1
	if hi <= lo {
		lo, hi = 10000, 20000
	}
	for i := 0; i < 200; i++ {
		p := lo + rand.IntN(hi-lo)
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		t, err := net.Listen("tcp", addr)
		u.Close()
		if err != nil {
			continue
		}
		t.Close()
		return p, nil
	}
	return 0, errors.New("no free port found")
}

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil {
		return 32768
	}
	return lo
}
