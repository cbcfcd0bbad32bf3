package node

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

// ConfigEntry is one key of `swarm config get`: its value as config.json
// holds it, or the default the node uses when config.json leaves it out.
type ConfigEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Default bool   `json:"default,omitempty"` // not set: Value is the default
	Help    string `json:"help"`
	Note    string `json:"note,omitempty"` // what the user should know about the value
}

// configKey is one settable key. Names are config.json's own field names,
// so what `swarm config get` shows is what the file holds.
type configKey struct {
	name, help string
	def        string // the default, as text, for keys config.json may leave out
	get        func(c *Config) string
	set        func(c *Config, v string) error // validates; v is never empty
}

// configKeys is the table behind `swarm config get|set`: the addresses
// and the limits. Everything else in config.json (domain, certificates,
// Angie, GitHub, wake) has its own command.
var configKeys = []configKey{
	{name: "listen", help: "the UDP+TCP address the node binds (behind Angie: a loopback HTTP/1.1 port)",
		get: func(c *Config) string { return c.Listen }, set: setListen},
	{name: "advertise", help: "the address peers use, carried by invite tokens and membership records: host:port or https://domain",
		get: func(c *Config) string { return c.Advertise }, set: setAdvertise},
	durKey("heartbeat", "presence period", "15s", func(c *Config) *Duration { return &c.Heartbeat }),
	durKey("retry_min", "outbox backoff floor", "250ms", func(c *Config) *Duration { return &c.RetryMin }),
	durKey("retry_max", "outbox backoff ceiling", "30s", func(c *Config) *Duration { return &c.RetryMax }),
	durKey("sync_every", "anti-entropy period (membership logs are compared with peers)", "1m0s", func(c *Config) *Duration { return &c.SyncEvery }),
	durKey("ttl", "default lifetime of a sent message", "72h0m0s", func(c *Config) *Duration { return &c.TTL }),
	durKey("inbox_keep", "read messages are pruned after this", "720h0m0s", func(c *Config) *Duration { return &c.InboxKeep }),
	floatKey("rate_limit", "envelopes per second accepted from one sender", "500", func(c *Config) *float64 { return &c.RateLimit }),
	floatKey("join_rate", "joins per second accepted from one remote address", "0.5", func(c *Config) *float64 { return &c.JoinRate }),
	intKey("join_burst", "joins one remote address may make at once", "5",
		func(c *Config) int64 { return int64(c.JoinBurst) }, func(c *Config, x int64) { c.JoinBurst = int(x) }),
	intKey("quota_sender", "unread inbox bytes one sender may hold in a swarm", "16777216",
		func(c *Config) int64 { return c.QuotaSender }, func(c *Config, x int64) { c.QuotaSender = x }),
	intKey("quota_swarm", "unread inbox bytes one swarm may hold", "67108864",
		func(c *Config) int64 { return c.QuotaSwarm }, func(c *Config, x int64) { c.QuotaSwarm = x }),
	intKey("bad_sig_budget", "envelopes with a bad signature one remote address may send per minute", "32",
		func(c *Config) int64 { return int64(c.BadSigBudget) }, func(c *Config, x int64) { c.BadSigBudget = int(x) }),
}

// ConfigKeys lists the keys `swarm config` knows, in table order.
func ConfigKeys() []string {
	out := make([]string, len(configKeys))
	for i, k := range configKeys {
		out[i] = k.name
	}
	return out
}

func findKey(name string) (*configKey, error) {
	for i := range configKeys {
		if configKeys[i].name == name {
			return &configKeys[i], nil
		}
	}
	return nil, Userf("unknown config key %q: want one of %s", clipName(name), strings.Join(ConfigKeys(), ", "))
}

// ConfigGet reads one key (or every key when key is empty) from the
// home's config.json: what the node will use at its next start.
func ConfigGet(home, key string) ([]ConfigEntry, error) {
	c, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	keys := configKeys
	if key != "" {
		k, err := findKey(key)
		if err != nil {
			return nil, err
		}
		keys = []configKey{*k}
	}
	out := make([]ConfigEntry, 0, len(keys))
	for _, k := range keys {
		out = append(out, entryOf(c, k))
	}
	return out, nil
}

func entryOf(c *Config, k configKey) ConfigEntry {
	e := ConfigEntry{Key: k.name, Value: k.get(c), Help: k.help}
	if e.Value == "" && k.def != "" {
		e.Value, e.Default = k.def, true
	}
	if k.name == "advertise" {
		e.Note = AdvertiseNote(c.Domain, c.Advertise)
	}
	return e
}

// ConfigSet validates value and writes it to the home's config.json. A
// running node keeps what it read at start: the change applies at the
// next `swarm serve` (or the next command that opens the node itself).
func ConfigSet(home, key, value string) (ConfigEntry, error) {
	k, err := findKey(key)
	if err != nil {
		return ConfigEntry{}, err
	}
	c, err := LoadConfig(home)
	if err != nil {
		return ConfigEntry{}, err
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return ConfigEntry{}, Userf("config %s: give a value (%s)", k.name, k.help)
	}
	if c.BehindProxy && k.name == "listen" {
		if err := loopbackListen(value); err != nil {
			return ConfigEntry{}, err
		}
	}
	if err := k.set(c, value); err != nil {
		return ConfigEntry{}, Userf("config %s: %v", k.name, err)
	}
	if err := checkProxyAdvertise(c); err != nil {
		return ConfigEntry{}, err
	}
	if err := SaveConfig(home, c); err != nil {
		return ConfigEntry{}, err
	}
	return entryOf(c, *k), nil
}

// ConfigGet and ConfigSet on an open node act on its home's config.json;
// the running node keeps its own copy until it restarts.
func (n *Node) ConfigGet(key string) ([]ConfigEntry, error) { return ConfigGet(n.home, key) }
func (n *Node) ConfigSet(key, value string) (ConfigEntry, error) {
	return ConfigSet(n.home, key, value)
}

func setListen(c *Config, v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q: want host:port", clipName(v))
	}
	if _, err := portOf(v); err != nil {
		return err
	}
	c.Listen = v
	return nil
}

func setAdvertise(c *Config, v string) error {
	if err := CheckAdvertise(v); err != nil {
		return err
	}
	c.Advertise = v
	return nil
}

func checkProxyAdvertise(c *Config) error {
	if c.BehindProxy && !strings.HasPrefix(c.Advertise, "https://") {
		return Userf("config advertise %q: behind Angie peers reach the node at https://DOMAIN", clipName(c.Advertise))
	}
	return nil
}

func loopbackListen(v string) error {
	host, _, err := net.SplitHostPort(v)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return Userf("config listen %q: behind Angie the node listens on a loopback host:port", clipName(v))
	}
	return nil
}

func portOf(addr string) (int, error) {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q: want a port number 1-65535", clipName(addr))
	}
	return n, nil
}

// CheckAdvertise refuses an address no peer can use: malformed, or an
// unspecified host (0.0.0.0, ::, or none as in ":7443"), which means
// "every interface" to a listener and nothing at all to a peer.
func CheckAdvertise(a string) error {
	if strings.HasPrefix(a, "https://") {
		return wire.ValidAddr(a)
	}
	host, _, err := net.SplitHostPort(a)
	if err == nil && unspecified(host) {
		return fmt.Errorf("%q has no host peers can reach (it means every interface): give this machine's address or name as peers see it, e.g. 203.0.113.7:7443", clipName(a))
	}
	if err := wire.ValidAddr(a); err != nil {
		return err
	}
	_, err = portOf(a)
	return err
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// AdvertiseNote warns about a loopback advertised address on a node whose
// name is not a test name: invite tokens it issues work on this machine
// only. Loopback stays allowed (local swarms, the demo, tests), so this is
// a note, not a refusal. Empty when there is nothing to say.
func AdvertiseNote(domain, advertise string) string {
	host, _, err := net.SplitHostPort(advertise)
	if err != nil || !LoopbackHost(host) || testDomain(domain) {
		return ""
	}
	return fmt.Sprintf("the node is advertised at %s, a loopback address: invite tokens it issues work only on this machine. "+
		"For peers on other machines: `swarm config set advertise HOST:PORT` (this machine's address as they see it), "+
		"or set up a production node behind Angie with `swarm init --domain %s` in a new home", advertise, domain)
}

// testDomain: names under the TLDs reserved for tests and local use
// (RFC 2606, RFC 6761, RFC 6762) never reach other machines anyway.
func testDomain(d string) bool {
	i := strings.LastIndexByte(d, '.')
	switch d[i+1:] {
	case "test", "localhost", "local", "invalid", "example", "internal":
		return true
	}
	return false
}

func durKey(name, help, def string, f func(*Config) *Duration) configKey {
	return configKey{name: name, help: help, def: def,
		get: func(c *Config) string {
			if d := *f(c); d > 0 {
				return time.Duration(d).String()
			}
			return ""
		},
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%q: want a positive duration such as 15s or 2h", clipName(v))
			}
			*f(c) = Duration(d)
			return nil
		}}
}

func floatKey(name, help, def string, f func(*Config) *float64) configKey {
	return configKey{name: name, help: help, def: def,
		get: func(c *Config) string {
			if x := *f(c); x > 0 {
				return strconv.FormatFloat(x, 'g', -1, 64)
			}
			return ""
		},
		set: func(c *Config, v string) error {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x > 0) || x > 1e9 {
				return fmt.Errorf("%q: want a positive number", clipName(v))
			}
			*f(c) = x
			return nil
		}}
}

// intKey is a whole-number key (the int and int64 fields alike).
func intKey(name, help, def string, get func(*Config) int64, put func(*Config, int64)) configKey {
	return configKey{name: name, help: help, def: def,
		get: func(c *Config) string {
			if x := get(c); x > 0 {
				return strconv.FormatInt(x, 10)
			}
			return ""
		},
		set: func(c *Config, v string) error {
			// At most 1<<30: every such limit fits an int on any platform.
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x <= 0 || x > 1<<30 {
				return fmt.Errorf("%q: want a whole number from 1 to %d", clipName(v), 1<<30)
			}
			put(c, x)
			return nil
		}}
}
