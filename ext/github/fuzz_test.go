package github

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/ext/github/fakegithub"
)

// FuzzWebhook feeds arbitrary bodies, signatures and event names to the
// handler. It must never panic, and must call the sink only for a body
// signed with the secret. sign=true signs the body properly so the fuzzer
// also reaches the payload parsing.
func FuzzWebhook(f *testing.F) {
	f.Add([]byte(`{"action":"opened","issue":{"number":1},"repository":{"full_name":"a/b"}}`), "", "issues", true)
	f.Add([]byte(`{"action":"created","issue":{"number":2},"comment":{"id":5,"body":"x"},"repository":{"full_name":"a/b"}}`), "", "issue_comment", true)
	f.Add([]byte(`{"zen":"hi"}`), "", "ping", true)
	f.Add([]byte(`{"action":"opened"}`), "sha256=00", "issues", false)
	f.Add([]byte(`null`), "", "issues", true)
	f.Add([]byte(`{"action":"created","issue":null,"comment":{}}`), "", "issue_comment", true)
	f.Fuzz(func(t *testing.T, body []byte, sig, event string, sign bool) {
		good := fakegithub.Sign(hookSecret, body)
		if sign {
			sig = good
		}
		called := false
		h := WebhookHandler(hookSecret, func(e Event) error {
			called = true
			if e.Repo == "" || e.Issue <= 0 || e.Action == "" {
				t.Fatalf("incomplete event %+v", e)
			}
			return nil
		})
		req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-Hub-Signature-256", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// Hex digits may come in either case; the prefix may not.
		valid := strings.HasPrefix(sig, "sha256=") && strings.EqualFold(sig, good)
		if called && !valid {
			t.Fatalf("sink called for signature %q", sig)
		}
		if !valid && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("unsigned request answered %d", rec.Code)
		}
	})
}
