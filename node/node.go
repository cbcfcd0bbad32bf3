// Package node is an agent's node: it serves the peer API, sends to peers,
// keeps membership, delivers durably and tracks presence. Every operation
// the faces (CLI, MCP, local API) offer is a method here; package ops
// lists them once.
package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/quic-go/quic-go"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/membership"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Options are what a caller (not the config file) decides.
type Options struct {
	Log   zerolog.Logger
	Serve bool // bind the peer API; false for a one-shot CLI node
	// Daemon: this process is the long-lived node (`swarm serve`).
	// Extensions run work that must outlive a session only here.
	Daemon bool
	// Ext are options for extensions by name (tests point them at fakes).
	Ext map[string]any
	// RootCAs for peers with real certificates (tests); nil = system roots.
	Client transport.ClientOptions
	// Now lets tests move the clock; nil is time.Now.
	Now func() time.Time
	// Store tunes the store (its free-space reserves); zero is the default.
	Store store.Options
	// badSigWindow shortens the bad-signature budget's period (tests).
	badSigWindow time.Duration
}

// Node is one agent's node.
type Node struct {
	home   string
	cfg    Config
	id     *identity.Identity
	log    zerolog.Logger
	st     *store.Store
	client *transport.Client
	server *transport.Server
	certs  *transport.Certs // nil behind a proxy
	pin    string
	now    func() time.Time
	window wire.Window

	mu     sync.Mutex
	swarms map[string]*swarm // by swarm ID
	ver    verifier          // names proven by their own HTTPS site

	recvMu  sync.Mutex // serialises inbox commits so the seen-ID check holds
	arrival uint64     // last local arrival number; guarded by recvMu
	out     *outbox
	pres    *presenceBook
	heard   *hearing // when each agent was last heard: master succession
	// Rate limiters by sender key and by remote IP, in bounded maps.
	limits  limiterMap
	joinLim limiterMap
	// badSigs spends each remote address's budget of bad signatures.
	badSigs      limiterMap
	bodies       *bodyBudget   // request bodies in memory, by remote address
	badSigWindow time.Duration // the budget's period; 0 is a minute
	syncing      sync.Map      // swarm ID -> time of last catch-up pull; "run/"+ID -> closed when it ends
	// supersedeFailed: swarm/signer key -> when a succession record it
	// signed last failed to replace records (succession.go); a member's
	// bad records cost one replay of the log a minute, not one a message.
	supersedeFailed map[string]time.Time // guarded by mu
	events          *broadcaster
	ext             extensions
	extOpts         map[string]any
	daemon          bool
	stats           stats // what /metrics reports (metrics.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	closed chan struct{}
}

type swarm struct {
	state *membership.State
	local localSwarm
}

// localSwarm is what this node alone knows of a swarm (w/<swarm>).
type localSwarm struct {
	Left    bool            `json:"left,omitempty"`    // this node left or was removed
	Reason  string          `json:"reason,omitempty"`  // leave, kick, dissolved
	Leaving map[string]bool `json:"leaving,omitempty"` // member keys whose signed leave arrived before the master's record
	Joined  int64           `json:"joined,omitempty"`
	// Fork says why this node holds proof that the log forked (the proofs
	// are in f/<swarm>/...); it keeps the chain it had.
	Fork string `json:"fork,omitempty"`
}

// Open opens a home: config, key, certificate and store. With o.Serve it
// also binds the peer API. Background work starts at once.
func Open(home string, o Options) (*Node, error) {
	cfg, err := LoadConfig(home) // errors name the home as given
	if err != nil {
		return nil, err
	}
	if home, err = filepath.Abs(home); err != nil { // once: a woken session runs elsewhere
		return nil, err
	}
	id, err := identity.Load(filepath.Join(home, KeyFile), cfg.Domain)
	if err != nil {
		return nil, err
	}
	certs, err := loadCerts(home, cfg, o.Log)
	if err != nil {
		return nil, err
	}
	pin := ""
	if cfg.SelfSigned && certs != nil {
		if pin, err = transport.PinOf(*certs.Current()); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(filepath.Join(home, DataDir), o.Store, o.Log)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		home: home, cfg: *cfg, id: id, log: o.Log, st: st, certs: certs, pin: pin,
		now: o.Now, window: wire.DefaultWindow,
		swarms: map[string]*swarm{},
		client: transport.NewClient(o.Client),
		pres:   newPresenceBook(),
		heard:  newHearing(o.Now()),
		bodies: newBodyBudget(defaultBodyBudget, defaultBodyPerAddr),
		events: newBroadcaster(),
		ctx:    ctx, cancel: cancel, closed: make(chan struct{}),
		badSigWindow: o.badSigWindow,
	}
	if err := n.loadSwarms(); err != nil {
		n.st.Close()
		cancel()
		return nil, err
	}
	n.stats.opened = n.now()
	n.arrival = n.lastArrival()
	n.noticeAll() // what a crash or a one-shot command left untold
	n.loadVerified()
	n.out = newOutbox(n)
	n.daemon, n.extOpts = o.Daemon, o.Ext
	if err := n.startExtensions(); err != nil {
		n.Close()
		return nil, err
	}
	if o.Serve {
		srv, err := transport.Listen(cfg.Listen, n.PeerHandler(), transport.ListenOptions{Certs: certs, NoQUIC: cfg.NoQUIC, ResetKey: resetKey(id), Log: o.Log})
		if err != nil {
			n.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("%w (another process holds this port; \"listen\" in %s names it)", err, filepath.Join(home, ConfigFile))
			}
			return nil, err
		}
		n.server = srv
		n.loop(n.pruneLoop)
		n.loop(n.heartbeatLoop)
		n.loop(n.syncLoop)
		n.loop(n.successionLoop)
	}
	if err := n.runExtensions(); err != nil {
		n.Close()
		return nil, err
	}
	n.out.start()
	return n, nil
}

// Go runs f in the background until the node closes; ctx ends when it
// does, and Close waits for f (bounded).
func (n *Node) Go(f func(ctx context.Context)) { n.loop(func() { f(n.ctx) }) }

// Daemon reports whether this node is the long-lived daemon.
func (n *Node) Daemon() bool { return n.daemon }

// ExtOptions returns the options given for extension name (nil if none).
func (n *Node) ExtOptions(name string) any { return n.extOpts[name] }

func (n *Node) loop(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// Close stops background work and the server, then closes the store.
// Safe to call twice.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		close(n.closed)
		if n.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = n.server.Shutdown(ctx)
			cancel()
		}
		err = errors.Join(err, n.closeExtensions())
		n.cancel()
		// Background work ends once it sees closed; a store stuck on a
		// failing disk must not hold shutdown for ever (DESIGN §5).
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(closeWait):
			n.log.Error().Dur("after", closeWait).Msg("background work did not stop; closing anyway")
		}
		n.client.Close()
		err = errors.Join(err, n.st.Close())
	})
	return err
}

// closeWait bounds how long Close waits for background work.
const closeWait = 3 * time.Second

// Domain is this agent's name.
func (n *Node) Domain() string { return n.cfg.Domain }

// Addr is the bound peer address, or "" when not serving.
func (n *Node) Addr() string {
	if n.server == nil {
		return ""
	}
	return n.server.Addr()
}

// Home is the node's home directory.
func (n *Node) Home() string { return n.home }

// Log is the node's logger.
func (n *Node) Log() zerolog.Logger { return n.log }

// key is this node's public key string: who it is.
func (n *Node) key() string { return n.id.KeyString() }

// self is how this node appears in membership records.
func (n *Node) self() wire.Member {
	return wire.Member{Domain: n.cfg.Domain, Key: n.id.KeyString(), Addr: n.cfg.Advertise, Pin: n.pin}
}

func (n *Node) limiter(m *limiterMap, key string, r rate.Limit, burst int) *rate.Limiter {
	return m.get(key, r, burst)
}

func (n *Node) done() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// PeerHandler is the peer API (exported for behind-proxy mode and tests).
func (n *Node) PeerHandler() http.Handler { return n.peerMux() }

// broadcaster wakes waiters when something new arrives.
type broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcaster() *broadcaster { return &broadcaster{ch: make(chan struct{})} }

// Wait returns a channel closed at the next Notify.
func (b *broadcaster) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcaster) Notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// resetKey derives the QUIC stateless-reset key from the node's identity:
// stable across restarts, secret, and of no other use.
func resetKey(id *identity.Identity) *quic.StatelessResetKey {
	h := sha256.New()
	h.Write([]byte("agent-swarm/v1/quic-stateless-reset\x00"))
	h.Write(id.Key.Seed())
	var k quic.StatelessResetKey
	copy(k[:], h.Sum(nil))
	return &k
}
