package node

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"
)

// The local HTTP endpoints (MCP over HTTP, the web page, metrics) share
// these guards, so one rule holds for all three.

// LoopbackHost reports whether host (without a port) names this machine:
// localhost or a loopback IP.
func LoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// BearerOK reports whether r carries token as its bearer token, compared
// in constant time. When it does not, it sets the headers of the 401 the
// caller writes: the challenge, and a closed connection, so a client
// without the token has no kept-alive connection to hold.
func BearerOK(w http.ResponseWriter, r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
		return true
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("WWW-Authenticate", `Bearer realm="swarm"`)
	return false
}

// LocalHTTPServer is the server of a local endpoint. No ReadTimeout or
// WriteTimeout: MCP's GET and the page's events are long-lived streams. A
// client must send its headers within ReadHeaderTimeout, and a kept-alive
// connection with no request is closed after IdleTimeout.
func LocalHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
