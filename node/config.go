package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/rs/zerolog"
)

// Config is the node's config file, $SWARM_HOME/config.json. It never
// holds secrets: the key lives in key.pem (0600), tokens in the environment.
type Config struct {
	Domain    string `json:"domain"`
	Listen    string `json:"listen"`    // UDP+TCP address to bind
	Advertise string `json:"advertise"` // address peers use: host:port or https://domain
	CertFile  string `json:"cert_file"` // relative to home
	KeyFile   string `json:"key_file"`
	// SelfSigned: peers verify this node by the pin in the membership log.
	SelfSigned bool `json:"self_signed"`
	// BehindProxy: Angie in front terminates TLS and QUIC; the node serves
	// plain HTTP/1.1 on the loopback Listen address, trusts X-Forwarded-For
	// only from loopback, and peers verify https://Domain by WebPKI.
	BehindProxy bool `json:"behind_proxy,omitempty"`
	// NoQUIC serves only HTTPS over TCP (standalone, on a host whose UDP
	// is blocked); peers fall back to it.
	NoQUIC bool `json:"no_quic,omitempty"`
	// Angie holds the choices the Angie site is generated from.
	Angie *AngieSettings `json:"angie,omitempty"`

	Heartbeat Duration `json:"heartbeat,omitempty"`  // presence period; default 15s
	RetryMin  Duration `json:"retry_min,omitempty"`  // outbox backoff floor; default 250ms
	RetryMax  Duration `json:"retry_max,omitempty"`  // outbox backoff ceiling; default 30s
	SyncEvery Duration `json:"sync_every,omitempty"` // anti-entropy period; default 60s
	TTL       Duration `json:"ttl,omitempty"`        // default message lifetime; default 72h
	InboxKeep Duration `json:"inbox_keep,omitempty"` // read messages are pruned after this; default 720h
	RateLimit float64  `json:"rate_limit,omitempty"` // envelopes per second per sender; default 500
	JoinRate  float64  `json:"join_rate,omitempty"`  // joins per second per remote address; default 0.5
	JoinBurst int      `json:"join_burst,omitempty"` // default 5
	// Quotas on unread inbox bytes (body plus a fixed overhead per
	// message): per sender in a swarm, and per swarm. A message over
	// either is rejected as retryable until the reader catches up.
	QuotaSender int64 `json:"quota_sender,omitempty"` // default 16 MiB
	QuotaSwarm  int64 `json:"quota_swarm,omitempty"`  // default 64 MiB
	// BadSigBudget is how many envelopes with a bad signature one remote
	// address may send per minute before its envelopes are refused
	// unverified; default 32.
	BadSigBudget int `json:"bad_sig_budget,omitempty"`

	// Ext holds the sections of extensions (configext.go), by name.
	Ext map[string]json.RawMessage `json:"-"`
}

// AngieSettings are the site options `swarm angie config` regenerates
// the site from (DESIGN §8).
type AngieSettings struct {
	ACMEDirectory string `json:"acme_directory,omitempty"`
	ACMEEmail     string `json:"acme_email,omitempty"`
	// ACMEHTTPPort for Angie >= 1.11 (acme_http_port); 0 writes a port-80
	// server for older Angie.
	ACMEHTTPPort int    `json:"acme_http_port,omitempty"`
	CABundle     string `json:"ca_bundle,omitempty"`
	Resolver     string `json:"resolver,omitempty"`
	SiteFile     string `json:"site_file,omitempty"` // where init wrote it, relative to home
}

// Duration is a time.Duration written as "1.5s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

func (d Duration) or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// Files inside a home.
const (
	ConfigFile = "config.json"
	KeyFile    = "key.pem"
	SocketFile = "swarm.sock"
	DataDir    = "data"
	ReadyFile  = "serve.ready"
)

// InitOptions are the flags of swarm init.
type InitOptions struct {
	Domain    string
	Listen    string
	Advertise string
	CertFile  string
	KeyFile   string
	// Angie: production behind Angie. Listen becomes a loopback HTTP/1.1
	// port (default: one from 7080-7979 picked by angieListen) and the
	// node advertises https://Domain.
	Angie  *AngieSettings
	NoQUIC bool
}

// Init makes a new home: key (0600), config, self-signed certificate
// unless one is given, and the data directory. It refuses to touch a home
// that already has a key.
func Init(home string, o InitOptions) (*Config, error) {
	if err := wire.ValidDomain(o.Domain); err != nil {
		return nil, Userf("%v", err)
	}
	if o.Angie != nil {
		return initBehindAngie(home, o)
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:7443"
	}
	lhost, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, Userf("invalid --listen %q: want host:port", o.Listen)
	}
	if _, err := portOf(o.Listen); err != nil {
		return nil, Userf("invalid --listen %v", err)
	}
	if o.Advertise == "" {
		// The listen address is what tokens carry unless told otherwise;
		// "every interface" is no address for a peer.
		if unspecified(lhost) {
			return nil, Userf("--listen %q binds every interface, which is no address for a peer: add --advertise HOST:PORT (this machine's address or name as peers see it)", o.Listen)
		}
		o.Advertise = o.Listen
	}
	if err := CheckAdvertise(o.Advertise); err != nil {
		return nil, Userf("--advertise: %v", err)
	}
	id, err := newHome(home, o.Domain)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Domain: o.Domain, Listen: o.Listen, Advertise: o.Advertise, CertFile: o.CertFile, KeyFile: o.KeyFile, NoQUIC: o.NoQUIC}
	if o.CertFile == "" {
		host, _, _ := net.SplitHostPort(strings.TrimPrefix(o.Advertise, "https://"))
		lhost, _, _ := net.SplitHostPort(o.Listen)
		certPEM, keyPEM, err := transport.SelfSigned(o.Domain, []string{host, lhost})
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(home, "tls"), 0o700); err != nil {
			return nil, err
		}
		cfg.CertFile, cfg.KeyFile, cfg.SelfSigned = "tls/cert.pem", "tls/key.pem", true
		if err := writeFile(filepath.Join(home, cfg.CertFile), certPEM, 0o644); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(home, cfg.KeyFile), keyPEM, 0o600); err != nil {
			return nil, err
		}
	}
	return cfg, finishHome(home, id, cfg)
}

// initBehindAngie makes a production home: no certificate of its own
// (Angie's ACME client gets one), a loopback HTTP/1.1 port for Angie's
// proxy_pass, and https://Domain as the address peers use.
func initBehindAngie(home string, o InitOptions) (*Config, error) {
	if o.Listen == "" {
		o.Listen = angieListen(o.Domain)
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, Userf("invalid --listen %q: behind Angie the node listens on a loopback host:port", o.Listen)
	}
	if o.CertFile != "" || o.KeyFile != "" {
		return nil, Userf("--cert/--key are for standalone nodes; behind Angie the certificate comes from Angie's ACME client")
	}
	if o.Advertise == "" {
		o.Advertise = "https://" + o.Domain
	}
	if err := wire.ValidAddr(o.Advertise); err != nil || !strings.HasPrefix(o.Advertise, "https://") {
		return nil, Userf("--advertise %q: behind Angie peers reach the node at https://DOMAIN", o.Advertise)
	}
	id, err := newHome(home, o.Domain)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Domain: o.Domain, Listen: o.Listen, Advertise: o.Advertise, BehindProxy: true, Angie: o.Angie}
	return cfg, finishHome(home, id, cfg)
}

// newHome refuses a home that has an identity, makes the directories and
// a new key.
func newHome(home, domain string) (*identity.Identity, error) {
	if _, err := os.Stat(filepath.Join(home, KeyFile)); err == nil {
		return nil, Userf("%s already holds an identity (%s); use another --home", home, KeyFile)
	}
	if err := os.MkdirAll(filepath.Join(home, DataDir), 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return nil, err
	}
	return identity.Generate(domain)
}

// finishHome writes the key (0600) and then the config, which marks the
// home complete.
func finishHome(home string, id *identity.Identity, cfg *Config) error {
	if err := id.Save(filepath.Join(home, KeyFile)); err != nil {
		return err
	}
	return SaveConfig(home, cfg)
}

// writeFile writes atomically: a temp file, fsync, rename.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadConfig reads a home's config.
func LoadConfig(home string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, NotFoundf("no swarm node in %s: run `swarm init --domain NAME` first (or pass --home)", home)
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(home, ConfigFile), err)
	}
	if err := wire.ValidDomain(c.Domain); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(home, ConfigFile), err)
	}
	return &c, nil
}

// SaveConfig writes a home's config.
func SaveConfig(home string, c *Config) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return writeFile(filepath.Join(home, ConfigFile), append(b, '\n'), 0o600)
}

// loadCerts loads the node's certificate pair, reloaded when the files
// change. Behind a proxy the node has none.
func loadCerts(home string, c *Config, log zerolog.Logger) (*transport.Certs, error) {
	if c.BehindProxy {
		return nil, nil
	}
	p := func(f string) string {
		if filepath.IsAbs(f) {
			return f
		}
		return filepath.Join(home, f)
	}
	return transport.LoadCerts(p(c.CertFile), p(c.KeyFile), log)
}
