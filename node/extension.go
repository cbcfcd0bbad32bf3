package node

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

// The node core knows no feature built on it. A feature (wakes, the GitHub
// layer) is an extension: its package registers itself from init with
// Register, the binary includes it by importing that package (one line of
// wiring in cmd/swarm), and every node opened afterwards makes one
// instance of it. An extension reaches the core only through the Node's
// exported methods; it adds operations to the table (node/ops.Register),
// may add peer endpoints (PeerRouter), hears the core's events
// (EventHandler), keeps its settings in its own config.json section
// (ExtConfig) and its data under its own store prefixes.

// Extension is a running feature of one node.
type Extension interface {
	// Close stops the extension's work; the core calls it before it
	// stops its own background work and closes the store.
	Close() error
}

// EventHandler is an extension that hears the core's events. HandleEvent
// runs on the path that made the event (a receive, a membership change),
// for EventMembership and EventSwarms with the core's lock held: it must
// be quick, must not block, and must not call back into the Node there;
// work goes to the extension's own goroutine (Node.Go).
type EventHandler interface {
	HandleEvent(Event)
}

// PeerRouter is an extension that serves endpoints of the peer API (a
// GitHub webhook), by ServeMux pattern ("POST /github/webhook"). A nil
// handler is not served; the core's own paths (/swarm/..., /.well-known/)
// are refused.
type PeerRouter interface {
	PeerRoutes() map[string]http.Handler
}

// Starter is an extension with work to start once the node is fully open
// (its peer API serving when it serves one): Start runs after every
// extension was made; an error closes the node.
type Starter interface {
	Start() error
}

// Aliaser is an extension that knows other names of this agent (a GitHub
// login): a message naming one of them mentions the agent.
type Aliaser interface {
	Aliases() []string
}

// ExtensionInfo registers an extension.
type ExtensionInfo struct {
	Name string // also its config.json section
	// Prefixes are the store key prefixes it owns ("gh/"): the core
	// writes none of them and no two extensions share one.
	Prefixes []string
	// New makes the extension for a node that has just opened (its store,
	// swarms and outbox are ready; its peer API is not yet serving). A
	// node opened for one command (not Options.Daemon) makes it too: its
	// operations must work there; long-lived work belongs to the daemon.
	New func(n *Node) (Extension, error)
	// DaemonEnv, if set, names what of the environment of a command that
	// starts the daemon the extension needs there, given the home's
	// config: variable names, or prefixes ending in "_" (ExtensionEnv).
	DaemonEnv func(cfg *Config) []string
}

// EventKind names an event of the core.
type EventKind string

const (
	// EventMessage: a message was stored in the inbox (from a peer, or a
	// notice of the node itself). Message and SenderKey are set.
	EventMessage EventKind = "message"
	// EventMembership: records were applied to a swarm's log. Records is
	// set, in log order.
	EventMembership EventKind = "membership"
	// EventSwarms: the set of swarms or a swarm's settings (link, master)
	// changed; extensions that act per swarm look again.
	EventSwarms EventKind = "swarms"
)

// Event is something the core did that extensions may act on.
type Event struct {
	Kind      EventKind
	Swarm     string // swarm ID
	SwarmName string
	// EventMessage
	Message   *wire.Message
	SenderKey string
	Local     bool // a notice of the node itself, not a peer's message
	// EventMembership: the signed records applied, in log order
	Records []wire.Signed
}

// coreKeyPrefixes are the store prefixes the core writes (see store's
// key list); extensions may not claim them.
var coreKeyPrefixes = []string{"l/", "w/", "f/", "a/", "i/", "r/", "x/", "m/", "o/", "d/", "n/",
	"q/", "s/", "v/", "u/", "dv/", "p/", "qb/", "sn/"}

var registry struct {
	sync.Mutex
	infos []ExtensionInfo
}

// Register adds an extension to every node opened afterwards. It panics
// on a duplicate name or a store prefix already taken: both are
// programming errors found at start.
func Register(info ExtensionInfo) {
	registry.Lock()
	defer registry.Unlock()
	if info.Name == "" || info.New == nil {
		panic("node.Register: an extension needs a name and New")
	}
	taken := map[string]string{}
	for _, p := range coreKeyPrefixes {
		taken[p] = "the core"
	}
	for _, e := range registry.infos {
		if e.Name == info.Name {
			panic(fmt.Sprintf("node.Register: extension %q registered twice", info.Name))
		}
		for _, p := range e.Prefixes {
			taken[p] = e.Name
		}
	}
	for _, p := range info.Prefixes {
		for q, owner := range taken {
			if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
				panic(fmt.Sprintf("node.Register: extension %q: store prefix %q overlaps %q of %s", info.Name, p, q, owner))
			}
		}
	}
	registry.infos = append(registry.infos, info)
}

// Registered lists the registered extensions' names, sorted.
func Registered() []string {
	registry.Lock()
	defer registry.Unlock()
	var names []string
	for _, e := range registry.infos {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

func registeredInfos() []ExtensionInfo {
	registry.Lock()
	defer registry.Unlock()
	return append([]ExtensionInfo(nil), registry.infos...)
}

// extensions are a node's running extensions, in registration order.
type extensions struct {
	names  []string
	byName map[string]Extension
}

// startExtensions makes every registered extension for n.
func (n *Node) startExtensions() error {
	n.ext.byName = map[string]Extension{}
	for _, info := range registeredInfos() {
		e, err := info.New(n)
		if err != nil {
			return fmt.Errorf("extension %s: %w", info.Name, err)
		}
		n.ext.names = append(n.ext.names, info.Name)
		n.ext.byName[info.Name] = e
	}
	return nil
}

// runExtensions starts those that have work to start.
func (n *Node) runExtensions() error {
	for _, name := range n.ext.names {
		if s, ok := n.ext.byName[name].(Starter); ok {
			if err := s.Start(); err != nil {
				return fmt.Errorf("extension %s: %w", name, err)
			}
		}
	}
	return nil
}

// closeExtensions closes them in reverse order.
func (n *Node) closeExtensions() error {
	var errs []error
	for i := len(n.ext.names) - 1; i >= 0; i-- {
		if err := n.ext.byName[n.ext.names[i]].Close(); err != nil {
			errs = append(errs, fmt.Errorf("extension %s: %w", n.ext.names[i], err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// Ext returns the node's instance of the extension named name, or nil
// when the binary does not include it.
func (n *Node) Ext(name string) Extension { return n.ext.byName[name] }

// publish hands ev to every extension that hears events.
func (n *Node) publish(ev Event) {
	for _, name := range n.ext.names {
		if h, ok := n.ext.byName[name].(EventHandler); ok {
			h.HandleEvent(ev)
		}
	}
}

// Aliases are this agent's other names, from every extension that knows
// some.
func (n *Node) Aliases() []string {
	var out []string
	for _, name := range n.ext.names {
		if a, ok := n.ext.byName[name].(Aliaser); ok {
			out = append(out, a.Aliases()...)
		}
	}
	return out
}

// extRoutes are the peer endpoints extensions serve.
func (n *Node) extRoutes() map[string]http.Handler {
	routes := map[string]http.Handler{}
	for _, name := range n.ext.names {
		if r, ok := n.ext.byName[name].(PeerRouter); ok {
			for p, h := range r.PeerRoutes() {
				path := p
				if _, after, ok := strings.Cut(p, " "); ok { // "POST /path"
					path = after
				}
				if h == nil || strings.HasPrefix(path, "/swarm/") || strings.HasPrefix(path, "/.well-known/") || strings.HasPrefix(path, "/healthz") {
					n.log.Error().Str("extension", name).Str("route", p).Msg("peer route refused: the core's own path")
					continue
				}
				routes[p] = h
			}
		}
	}
	return routes
}

// Serving reports whether the node serves the peer API (a daemon, or a
// session's in-process node), where background sync belongs.
func (n *Node) Serving() bool { return n.server != nil }
