package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/rs/zerolog"

	"github.com/agent-swarm/agent-swarm/store"
)

const (
	maxHookBody = 1 << 20 // GitHub caps payloads at 25 MB; issue events are tiny
	deliveryTTL = 24 * time.Hour
)

// WebhookOption configures WebhookHandler.
type WebhookOption func(*webhook)

// WithStore dedupes deliveries durably in st (else in memory).
func WithStore(st *store.Store) WebhookOption { return func(h *webhook) { h.st = st } }

// WithSeen shares the record of announced events with the poller, so an
// event both report is announced once (default: its own, on the store).
func WithSeen(s *Seen) WebhookOption { return func(h *webhook) { h.announced = s } }

// WithAccept names the repositories this node syncs; a delivery for
// another is acknowledged and neither announced nor recorded, so this
// node's record still says it was never told (default: all).
func WithAccept(accept func(repo string) bool) WebhookOption {
	return func(h *webhook) { h.accept = accept }
}

// WithLogger sets the handler's logger.
func WithLogger(l zerolog.Logger) WebhookOption { return func(h *webhook) { h.log = l } }

type webhook struct {
	secret []byte
	sink   func(Event) error
	st     *store.Store
	log    zerolog.Logger
	mu     sync.Mutex           // one delivery at a time: check, sink, mark
	mem    map[string]time.Time // deliveries seen, without a store
	// announced is shared with the poller: events by their IDs.
	announced *Seen
	accept    func(repo string) bool
}

// WebhookHandler serves POST /github/webhook. Only requests signed with
// secret (X-Hub-Signature-256) reach sink; an empty secret refuses all.
// issues and issue_comment events become Events; ping is answered;
// other events are accepted and ignored. A delivery ID is handed to sink
// once (GitHub redelivers on demand).
func WebhookHandler(secret []byte, sink func(Event) error, opts ...WebhookOption) http.Handler {
	h := &webhook{secret: append([]byte(nil), secret...), sink: sink, log: zerolog.Nop(),
		mem: map[string]time.Time{}}
	for _, o := range opts {
		o(h)
	}
	if h.announced == nil {
		h.announced = NewSeen(h.st)
	}
	h.log = h.log.With().Str("component", "github-webhook").Logger()
	if len(h.secret) == 0 {
		h.log.Warn().Msg("no webhook secret: every delivery will be refused")
	}
	return h
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	// Nothing about the request is trusted, or even parsed, before this.
	if !h.verify(r.Header.Get(gh.SHA256SignatureHeader), body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	status, msg := h.handle(r, body)
	http.Error(w, msg, status)
}

// verify checks "sha256=<hex HMAC of body>" in constant time.
func (h *webhook) verify(sig string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(h.secret) == 0 {
		return false
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func (h *webhook) handle(r *http.Request, body []byte) (int, string) {
	kind := r.Header.Get(gh.EventTypeHeader)
	switch kind {
	case "ping":
		return http.StatusOK, "pong"
	case "issues", "issue_comment", "pull_request":
	default:
		return http.StatusAccepted, "ignored"
	}
	delivery := r.Header.Get(gh.DeliveryIDHeader)
	if len(delivery) > 128 {
		return http.StatusBadRequest, "bad delivery id"
	}
	payload, err := jsonPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	// The HMAC covers the body, not the delivery header: the same signed
	// body under a new or missing header is the same delivery.
	sum := sha256.Sum256(body)
	bodyID := hex.EncodeToString(sum[:16])
	ev, ok, err := toEvent(kind, bodyID, payload)
	if err != nil {
		return http.StatusBadRequest, "malformed payload"
	}
	if !ok {
		return http.StatusAccepted, "ignored"
	}
	if h.accept != nil && !h.accept(ev.Repo) {
		return http.StatusAccepted, "not synced on this node"
	}
	ids := []string{"body/" + bodyID}
	if delivery != "" {
		ids = append(ids, "id/"+delivery)
	}
	return h.deliver(ids, ev)
}

// deliver hands ev to the sink once per delivery (its ID or its signed
// body) and once per event across the webhook and the poller. A sink
// failure is not recorded, so a redelivery can succeed.
func (h *webhook) deliver(ids []string, ev Event) (int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen, err := h.seen(ids)
	if err != nil {
		h.log.Error().Err(err).Msg("delivery dedupe")
		return http.StatusInternalServerError, "store error"
	}
	if seen {
		return http.StatusOK, "duplicate delivery"
	}
	announced, err := h.announced.Once(ev, h.sink)
	if err != nil {
		h.log.Warn().Err(err).Strs("delivery", ids).Msg("sink refused webhook event")
		return http.StatusInternalServerError, "not delivered"
	}
	if err := h.mark(ids); err != nil {
		h.log.Error().Err(err).Msg("record delivery")
	}
	if !announced {
		return http.StatusOK, "already announced"
	}
	return http.StatusAccepted, "accepted"
}

func (h *webhook) seen(ids []string) (bool, error) {
	if h.st == nil {
		for _, id := range ids {
			if t, ok := h.mem[id]; ok && time.Since(t) < deliveryTTL {
				return true, nil
			}
		}
		return false, nil
	}
	var seen bool
	err := h.st.View(func(tx *store.Tx) error {
		for _, id := range ids {
			ok, err := tx.Has(store.Key("gh", "hook", id))
			if err != nil || ok {
				seen = ok
				return err
			}
		}
		return nil
	})
	return seen, err
}

func (h *webhook) mark(ids []string) error {
	if h.st == nil {
		now := time.Now()
		for k, t := range h.mem { // bounded by a day of deliveries
			if now.Sub(t) >= deliveryTTL {
				delete(h.mem, k)
			}
		}
		for _, id := range ids {
			h.mem[id] = now
		}
		return nil
	}
	return h.st.Update(func(tx *store.Tx) error {
		for _, id := range ids {
			if err := tx.PutTTL(store.Key("gh", "hook", id), true, deliveryTTL); err != nil {
				return err
			}
		}
		return nil
	})
}

// jsonPayload extracts the JSON from either webhook content type.
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, fmt.Errorf("bad Content-Type")
	}
	switch mt {
	case "application/json", "":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("bad form body")
		}
		return []byte(form.Get("payload")), nil
	}
	return nil, fmt.Errorf("unsupported Content-Type %q", mt)
}

// toEvent converts a payload; ok is false for actions not worth a
// notification (comment edits and deletions).
// bodyID names the delivery (a hash of its signed body).
func toEvent(kind, bodyID string, payload []byte) (Event, bool, error) {
	parsed, err := gh.ParseWebHook(kind, payload)
	if err != nil {
		return Event{}, false, err
	}
	switch p := parsed.(type) {
	case *gh.IssuesEvent:
		return issuesEvent(p, bodyID)
	case *gh.IssueCommentEvent:
		return commentEvent(p)
	case *gh.PullRequestEvent:
		return pullEvent(p, bodyID)
	}
	return Event{}, false, nil
}

var errIncomplete = errors.New("payload lacks action, issue or repository")

func issuesEvent(p *gh.IssuesEvent, bodyID string) (Event, bool, error) {
	is := p.GetIssue()
	if p.GetAction() == "" || is.GetNumber() <= 0 || p.GetRepo().GetFullName() == "" {
		return Event{}, false, errIncomplete
	}
	if !wanted[p.GetAction()] {
		return Event{}, false, nil
	}
	ev := Event{ID: "hook:" + bodyID, Repo: p.GetRepo().GetFullName(), Issue: is.GetNumber(),
		Action: p.GetAction(), Actor: p.GetSender().GetLogin(), URL: is.GetHTMLURL(), Title: is.GetTitle(),
		Label: p.GetLabel().GetName(), Assignee: p.GetAssignee().GetLogin(), At: is.GetUpdatedAt().Time,
		PR: is.IsPullRequest()}
	if ev.Action == "opened" {
		// Same ID as the poller's, so both sources together still notify once.
		ev.ID, ev.Body, ev.At = fmt.Sprintf("issue:%d", ev.Issue), excerpt(is.GetBody()), is.GetCreatedAt().Time
		ev.WriteID = writeIDOf(is.GetBody())
	}
	return ev, true, nil
}

// pullEvent maps a pull request's opening, closing and reopening (the
// events API reports them on the PR's issue; the rest, reviews and
// pushes, are not task activity and are dropped).
func pullEvent(p *gh.PullRequestEvent, bodyID string) (Event, bool, error) {
	pr := p.GetPullRequest()
	if p.GetAction() == "" || pr.GetNumber() <= 0 || p.GetRepo().GetFullName() == "" {
		return Event{}, false, errIncomplete
	}
	if !wanted[p.GetAction()] {
		return Event{}, false, nil
	}
	ev := Event{ID: "hook:" + bodyID, Repo: p.GetRepo().GetFullName(), Issue: pr.GetNumber(), PR: true,
		Action: p.GetAction(), Actor: p.GetSender().GetLogin(), URL: pr.GetHTMLURL(), Title: pr.GetTitle(),
		Label: p.GetLabel().GetName(), Assignee: p.GetAssignee().GetLogin(), At: pr.GetUpdatedAt().Time}
	if ev.Action == "opened" {
		ev.ID, ev.Body, ev.At = fmt.Sprintf("issue:%d", ev.Issue), excerpt(pr.GetBody()), pr.GetCreatedAt().Time
		ev.WriteID = writeIDOf(pr.GetBody())
	}
	return ev, true, nil
}

func commentEvent(p *gh.IssueCommentEvent) (Event, bool, error) {
	is, cm := p.GetIssue(), p.GetComment()
	if p.GetAction() == "" || is.GetNumber() <= 0 || p.GetRepo().GetFullName() == "" || cm.GetID() == 0 {
		return Event{}, false, errIncomplete
	}
	if p.GetAction() != "created" {
		return Event{}, false, nil
	}
	return Event{ID: fmt.Sprintf("comment:%d", cm.GetID()), Repo: p.GetRepo().GetFullName(),
		Issue: is.GetNumber(), Action: "commented", Actor: cm.GetUser().GetLogin(), URL: cm.GetHTMLURL(),
		Title: is.GetTitle(), Body: excerpt(cm.GetBody()), At: cm.GetCreatedAt().Time,
		PR: is.IsPullRequest(), WriteID: writeIDOf(cm.GetBody())}, true, nil
}
