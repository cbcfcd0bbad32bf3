package github

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/rs/zerolog"
)

// The GitHub layer is an extension of the node (node.Register): the task
// board's operations, the durable write queue, the sync bot and the
// webhook. This file is its glue: what it registers, its settings, and how
// it starts and stops with the node.

// Name is the extension's name and its config.json section.
const Name = "github"

func init() {
	node.Register(node.ExtensionInfo{Name: Name, Prefixes: []string{"gh/"}, New: newExt, DaemonEnv: daemonEnv})
	// A command's token serves its calls to a daemon that has none.
	node.RegisterCallerEnv(tokenEnv...)
	node.RegisterPublicPaths(publicPaths)
	node.RegisterRelay(Relay, "It relays GitHub activity: the words it quotes are the named GitHub user's, not the sender's.")
	registerOps()
}

// Settings are the node's GitHub choices (config.json "github"). The
// token is never here: it comes from GITHUB_TOKEN, GH_TOKEN or
// `gh auth token`.
type Settings struct {
	APIURL string `json:"api_url,omitempty"` // GitHub Enterprise: https://HOST/api/v3/
	Login  string `json:"login,omitempty"`   // this agent's GitHub login (claims assign it)
	// Sync: "auto" (default) runs the bot on the node that is master of
	// a linked swarm, so members are not notified twice; "on", "off".
	Sync      string        `json:"sync,omitempty"`
	PollEvery node.Duration `json:"poll_every,omitempty"` // default 60s
	// WebhookSecretEnv names the environment variable holding the
	// webhook secret; default SWARM_GITHUB_WEBHOOK_SECRET. Unset: no
	// webhook endpoint, polling only.
	WebhookSecretEnv string `json:"webhook_secret_env,omitempty"`
	// Phases a task may be in (task create --phase), besides the
	// repository's own phase:* labels.
	Phases []string `json:"phases,omitempty"`
}

// Options are a node's GitHub options given in code (node.Options.Ext
// [Name]): for tests, several nodes in one process each with its own
// token, and short lease times.
type Options struct {
	// Token replaces the environment's (GITHUB_TOKEN, GH_TOKEN, gh).
	Token string
	Lease LeaseOptions
}

// pollEvery is the bot's period.
func (s Settings) pollEvery() time.Duration {
	if s.PollEvery <= 0 {
		return time.Minute
	}
	return time.Duration(s.PollEvery)
}

// secretEnv is the variable holding the webhook secret.
func (s Settings) secretEnv() string {
	if s.WebhookSecretEnv == "" {
		return "SWARM_GITHUB_WEBHOOK_SECRET"
	}
	return s.WebhookSecretEnv
}

// settingsOf reads a home's section; a bad one reads as none here, where
// only the environment of a daemon or a proxy is decided: the node
// itself refuses to open with it.
func settingsOf(cfg *node.Config) Settings {
	var s Settings
	if cfg.ExtSection(Name, &s) != nil {
		return Settings{}
	}
	return s
}

// daemonEnv is what an auto-started daemon keeps of its starter's
// environment for GitHub: the token, gh's settings (the sync bot and
// queued writes run on the daemon's own token) and the webhook secret.
func daemonEnv(cfg *node.Config) []string {
	return []string{"GITHUB_TOKEN", "GH_", "GITHUB_API_URL", "GITHUB_ENTERPRISE_TOKEN", settingsOf(cfg).secretEnv()}
}

// publicPaths: GitHub's webhook deliveries reach the sync bot only when a
// webhook secret is configured; otherwise the bot polls.
func publicPaths(cfg *node.Config) []string {
	s := settingsOf(cfg)
	if s.WebhookSecretEnv == "" || s.Sync == "off" {
		return nil
	}
	return []string{webhookPath}
}

const webhookPath = "/github/webhook"

// Ext is the GitHub layer of one node.
type Ext struct {
	n      *node.Node
	log    zerolog.Logger
	set    Settings
	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu    sync.Mutex
	layer *layer // made on first GitHub use
	bots  bots
	// seen is what the pollers and the webhook announced: one record, so
	// an event both report is announced once.
	seenOnce sync.Once
	seen     *Seen

	opt     Options
	inbound chan node.Event // members' messages, off the receive path (heard)

	loginMu    sync.Mutex
	login      string // the own token's user, once known (tokenLogin)
	loginAsked bool

	masters sync.Map // "<swarm ID>/<key fingerprint>": keys seen holding the master role (heardRelay)
	// ownWrites are the IDs of the writes this process queued: a comment
	// carrying one names this node's own token user (an App's too).
	ownWrites sync.Map
	leases    leaseBook
	claimMu   sync.Mutex // one claim decision at a time on this node
}

func newExt(n *node.Node) (node.Extension, error) {
	var set Settings
	if err := n.ExtConfig(Name, &set); err != nil {
		return nil, err
	}
	if err := checkSettings(set); err != nil {
		return nil, err
	}
	opt, _ := n.ExtOptions(Name).(Options)
	opt.Lease = opt.Lease.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Ext{n: n, log: n.Log(), set: set, ctx: ctx, cancel: cancel, opt: opt,
		inbound: make(chan node.Event, 256),
		bots:    bots{kick: make(chan struct{}, 1), running: map[string]*botEntry{}}}, nil
}

// Of is the node's GitHub layer, or nil when the binary leaves it out.
func Of(n *node.Node) *Ext {
	e, _ := n.Ext(Name).(*Ext)
	return e
}

// Start runs the bots where the node serves (a daemon, or a session's
// in-process node) and finishes writes a restart left pending.
func (e *Ext) Start() error {
	if !e.n.Serving() {
		return nil
	}
	e.resume()
	e.bots.done = make(chan struct{})
	e.n.Go(func(context.Context) { defer close(e.bots.done); e.botLoop() })
	e.n.Go(func(context.Context) { e.heardLoop() })
	e.n.Go(func(context.Context) { e.leaseLoop() })
	return nil
}

// Close stops the bots and the write queue.
func (e *Ext) Close() error {
	e.cancel()
	if e.bots.done == nil {
		return nil // never started
	}
	select {
	case <-e.bots.done:
	case <-time.After(3 * time.Second):
		e.log.Error().Msg("github sync bots did not stop")
	}
	return nil
}

// HandleEvent kicks the bot loop when links or master roles may have
// changed, so a new link starts its bot (and primes its cursor) at once.
// Members' notifications (relays, leases, writers) are queued for
// heardLoop: this runs on the receive path.
func (e *Ext) HandleEvent(ev node.Event) {
	switch ev.Kind {
	case node.EventSwarms:
		e.kickBots()
	case node.EventMessage:
		if ev.Message == nil || ev.Message.Type != "notification" {
			return
		}
		select {
		case e.inbound <- ev:
		default:
			e.log.Warn().Str("id", ev.Message.ID).Msg("github: too many notifications at once; one not recorded")
		}
	}
}

// Aliases: a message naming this agent's GitHub login mentions it.
func (e *Ext) Aliases() []string {
	if e.set.Login == "" {
		return nil
	}
	return []string{e.set.Login}
}

// PeerRoutes serves POST /github/webhook when a secret is configured.
func (e *Ext) PeerRoutes() map[string]http.Handler {
	h := e.webhookHandler()
	if h == nil {
		return nil
	}
	return map[string]http.Handler{"POST " + webhookPath: h}
}

// webhookHandler serves the webhook when a secret is configured and sync
// is not off; deliveries for repositories this node does not sync are
// acknowledged and dropped.
func (e *Ext) webhookHandler() http.Handler {
	secret := os.Getenv(e.set.secretEnv())
	if secret == "" || e.set.Sync == "off" {
		return nil
	}
	// Nothing slow before the answer: the relay is a store write; the
	// token's user is asked in the background (tokenLogin).
	return WebhookHandler([]byte(secret), func(ev Event) error { return e.ghEvent(e.ctx, ev) },
		WithStore(e.n.Store()), WithSeen(e.ghSeen()), WithLogger(e.log),
		WithAccept(func(repo string) bool { return len(e.wantBots()[strings.ToLower(repo)]) > 0 }))
}

// ghSeen is the node's one record of announced GitHub events.
func (e *Ext) ghSeen() *Seen {
	e.seenOnce.Do(func() { e.seen = NewSeen(e.n.Store()) })
	return e.seen
}
