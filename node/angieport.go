package node

import (
	"hash/fnv"
	"net"
	"strconv"
)

// The loopback ports a node behind Angie picks from.
const (
	angiePortBase  = 7080
	angiePortRange = 900
)

// angieListen picks the loopback address of a node behind Angie when
// init is given none: a port derived from the domain, or the next free
// one after it. Several agents that share a host (and an Angie) then get
// distinct ports without being told, even when one of them is not
// running at the other's init, and a domain gets the same port each time
// it is free. The port stays in config.json; `swarm config set listen`
// changes it.
func angieListen(domain string) string {
	h := fnv.New32a()
	h.Write([]byte(domain))
	start := int(h.Sum32() % angiePortRange)
	for i := 0; i < angiePortRange; i++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(angiePortBase+(start+i)%angiePortRange))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(angiePortBase+start))
}
