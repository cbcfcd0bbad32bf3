package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/rs/zerolog"
)

// Peer is the raw baseline server, run as PeerCommand in a child: the
// same HTTP/3 transport as a node, with a handler that reads the body and
// answers 200. Its certificate and key are cert.pem and key.pem in dir.
// It prints its address as one line on stdout, then serves until ctx ends.
func Peer(ctx context.Context, dir string, stdout io.Writer) error {
	if dir == "" {
		return fmt.Errorf("%s: no directory with cert.pem and key.pem", PeerCommand)
	}
	certs, err := transport.LoadCerts(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), zerolog.Nop())
	if err != nil {
		return err
	}
	srv, err := transport.Listen("127.0.0.1:0", rawHandler(), transport.ListenOptions{Certs: certs, Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// rawHandler is the raw server's whole work: read the body, answer 200.
func rawHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
}

// rawPeer starts a raw HTTP/3 server process and returns how to reach it.
func (b *bencher) rawPeer() (transport.Peer, int, error) {
	p, cmd, err := b.rawPeerCmd()
	if err != nil {
		return p, 0, err
	}
	return p, cmd.Process.Pid, nil
}

// rawDir writes a self-signed pair for a raw server and returns its
// directory and pin.
func (b *bencher) rawDir() (string, string, error) {
	dir, err := os.MkdirTemp(b.tmp, "raw-")
	if err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := transport.SelfSigned("raw.bench", []string{"127.0.0.1"})
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
		return "", "", err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", "", err
	}
	pin, err := transport.PinOf(cert)
	return dir, pin, err
}

// rawPeerCmd starts a raw HTTP/3 server process and returns how to reach
// it and the child.
func (b *bencher) rawPeerCmd() (transport.Peer, *exec.Cmd, error) {
	dir, pin, err := b.rawDir()
	if err != nil {
		return transport.Peer{}, nil, err
	}
	cmd, out, err := b.start(PeerCommand, "--dir", dir)
	if err != nil {
		return transport.Peer{}, nil, err
	}
	line, err := readLine(bufio.NewReader(out), 15*time.Second)
	if err != nil {
		return transport.Peer{}, nil, fmt.Errorf("raw peer did not start: %w", err)
	}
	return transport.Peer{Addr: line, Pin: pin}, cmd, nil
}

// readLine reads the next line of r, waiting at most d. r is kept by the
// caller across lines (a fresh bufio.Reader would drop what it buffered).
func readLine(r *bufio.Reader, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case v := <-ch:
		return v.s, v.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %s", d)
	}
}

// rawPOST is one baseline request: a POST of body that the raw server
// reads and answers 200.
func rawPOST(ctx context.Context, client *transport.Client, p transport.Peer, body string) error {
	code, _, err := client.Do(ctx, p, "POST", "/bench", []byte(body), nil, 1<<16)
	if err == nil && code != 200 {
		err = fmt.Errorf("raw peer answered %d", code)
	}
	return err
}

// rawFanOut posts body to every raw peer at once and waits for all.
func rawFanOut(ctx context.Context, client *transport.Client, raws []transport.Peer, body string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(raws))
	for _, p := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- rawPOST(ctx, client, p, body)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
