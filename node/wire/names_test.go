package wire_test

import (
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

func TestValidThread(t *testing.T) {
	for _, tc := range []struct {
		thread string
		ok     bool
	}{
		{"design", true},
		{"d", true},
		{"7", true},
		{"pr-12.review_2", true},
		{"01a210cc-e7e9-7190-aed8-0edc1875a521", true}, // a message ID
		{strings.Repeat("t", 64), true},
		{"", false},
		{strings.Repeat("t", 65), false},
		{"Design", false},                               // lower case only: one spelling per thread
		{"01A210CC-E7E9-7190-AED8-0EDC1875A521", false}, // IDs are lower case too
		{"-design", false},                              // would read as a flag
		{".hidden", false},
		{"..", false},
		{"a b", false},
		{"a/b", false},
		{"a\\b", false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"zero\u200bwidth", false},
		{"dé", false},
		{"ｄesign", false}, // fullwidth look-alike
	} {
		err := wire.ValidThread(tc.thread)
		if (err == nil) != tc.ok {
			t.Errorf("ValidThread(%q) = %v, want ok=%v", tc.thread, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "invalid thread") {
			t.Errorf("ValidThread(%q): error %q does not name the thread", tc.thread, err)
		}
	}
}

// A message's thread is checked on receive as on send: the same parser.
func TestParseMessageThread(t *testing.T) {
	for _, tc := range []struct {
		thread, err string
	}{
		{"design", ""},
		{"01a210cc-e7e9-7190-aed8-0edc1875a521", ""},
		{"Design", "invalid thread"},
		{"a\u202eb", "invalid thread"},
		{strings.Repeat("x", 200), "invalid thread"},
	} {
		m := seedMessage()
		m.Thread = tc.thread
		err := m.Check(fuzzNow, wire.DefaultWindow)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("thread %q: %v, want %q", tc.thread, err, tc.err)
		}
	}
}
