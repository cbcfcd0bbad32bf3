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

// WithLogger sets the handler's logger.
func WithLogger(l zerolog.Logger) WebhookOption { return func(h *webhook) { h.log = l } }

type webhook struct {
	secret []byte
	sink   func(Event) error
	st     *store.Store
	log    zerolog.Logger
	mu     sync.Mutex           // one delivery at a time: check, sink, mark
	mem    map[string]time.Time // deliveries seen, without a store
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
	case "issues", "issue_comment":
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
	ev, ok, err := toEvent(kind, delivery, payload)
	if err != nil {
		return http.StatusBadRequest, "malformed payload"
	}
	if !ok {
		return http.StatusAccepted, "ignored"
	}
	return h.deliver(delivery, ev)
}

// deliver hands ev to the sink once per delivery ID. A sink failure is
// not recorded, so a redelivery can succeed.
func (h *webhook) deliver(delivery string, ev Event) (int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen, err := h.seen(delivery)
	if err != nil {
		h.log.Error().Err(err).Msg("delivery dedupe")
		return http.StatusInternalServerError, "store error"
	}
	if seen {
		return http.StatusOK, "duplicate delivery"
	}
	if err := h.sink(ev); err != nil {
		h.log.Warn().Err(err).Str("delivery", delivery).Msg("sink refused webhook event")
		return http.StatusInternalServerError, "not delivered"
	}
	if err := h.mark(delivery); err != nil {
		h.log.Error().Err(err).Msg("record delivery")
	}
	return http.StatusAccepted, "accepted"
}

func (h *webhook) seen(delivery string) (bool, error) {
	if delivery == "" {
		return false, nil
	}
	if h.st == nil {
		t, ok := h.mem[delivery]
		return ok && time.Since(t) < deliveryTTL, nil
	}
	var seen bool
	err := h.st.View(func(tx *store.Tx) (err error) {
		seen, err = tx.Has(store.Key("gh", "hook", delivery))
		return err
	})
	return seen, err
}

func (h *webhook) mark(delivery string) error {
	if delivery == "" {
		return nil
	}
	if h.st == nil {
		now := time.Now()
		for k, t := range h.mem { // bounded by a day of deliveries
			if now.Sub(t) >= deliveryTTL {
				delete(h.mem, k)
			}
		}
		h.mem[delivery] = now
		return nil
	}
	return h.st.Update(func(tx *store.Tx) error {
		return tx.PutTTL(store.Key("gh", "hook", delivery), true, deliveryTTL)
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
func toEvent(kind, delivery string, payload []byte) (Event, bool, error) {
	parsed, err := gh.ParseWebHook(kind, payload)
	if err != nil {
		return Event{}, false, err
	}
	switch p := parsed.(type) {
	case *gh.IssuesEvent:
		return issuesEvent(p, delivery)
	case *gh.IssueCommentEvent:
		return commentEvent(p)
	}
	return Event{}, false, nil
}

var errIncomplete = errors.New("payload lacks action, issue or repository")

func issuesEvent(p *gh.IssuesEvent, delivery string) (Event, bool, error) {
	is := p.GetIssue()
	if p.GetAction() == "" || is.GetNumber() <= 0 || p.GetRepo().GetFullName() == "" {
		return Event{}, false, errIncomplete
	}
	ev := Event{ID: "delivery:" + delivery, Repo: p.GetRepo().GetFullName(), Issue: is.GetNumber(),
		Action: p.GetAction(), Actor: p.GetSender().GetLogin(), URL: is.GetHTMLURL(), Title: is.GetTitle(),
		Label: p.GetLabel().GetName(), Assignee: p.GetAssignee().GetLogin(), At: is.GetUpdatedAt().Time}
	if ev.Action == "opened" {
		// Same ID as the poller's, so both sources together still notify once.
		ev.ID, ev.Body, ev.At = fmt.Sprintf("issue:%d", ev.Issue), excerpt(is.GetBody()), is.GetCreatedAt().Time
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
		Title: is.GetTitle(), Body: excerpt(cm.GetBody()), At: cm.GetCreatedAt().Time}, true, nil
}
