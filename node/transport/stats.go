package transport

// Conns is how many QUIC connections the client holds open to peers
// (for metrics; read on a scrape).
func (c *Client) Conns() int {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return len(c.conns)
}
