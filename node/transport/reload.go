package transport

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Certs serves a certificate from a pair of PEM files and reloads it when
// either file changes, so a renewed certificate (certbot, an ACME hook, a
// copied file) is used without restarting the node. A broken pair keeps
// the old certificate in service and is logged.
type Certs struct {
	certFile, keyFile string
	log               zerolog.Logger
	every             time.Duration

	mu      sync.Mutex
	cur     *tls.Certificate
	stamp   string // modification times and sizes of both files
	checked time.Time
}

// LoadCerts loads the pair now; it fails if the pair cannot be used.
func LoadCerts(certFile, keyFile string, log zerolog.Logger) (*Certs, error) {
	c := &Certs{certFile: certFile, keyFile: keyFile, log: log, every: time.Second}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	c.cur, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

// Current is the certificate in service (checking the files first, at most
// once per second).
func (c *Certs) Current() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= c.every {
		c.checked = time.Now()
		c.reload()
	}
	return c.cur
}

// GetCertificate is for tls.Config.
func (c *Certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.Current(), nil
}

func (c *Certs) reload() {
	stamp, err := c.fileStamp()
	if err != nil || stamp == c.stamp {
		return
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// Often a half-written renewal: the next check tries again.
		c.log.Warn().Err(err).Str("cert", c.certFile).Msg("changed certificate not loaded; keeping the old one")
		return
	}
	c.cur, c.stamp = &cert, stamp
	c.log.Info().Str("cert", c.certFile).Msg("certificate reloaded")
}

func (c *Certs) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}
