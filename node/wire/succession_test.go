package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/node/wire"
)

const seedHash = "3f1d5a8e2c4b4f7a9e3d0b8c7a6e5d413f1d5a8e2c4b4f7a9e3d0b8c7a6e5d41"

func seedSupport() wire.Support {
	_, key := seedKey()
	return wire.Support{V: 1, Swarm: "f4eeqcbnhdcy3fkb6hc235s5", Head: wire.Head{Index: 4, Hash: seedHash},
		Candidate: key, Time: fuzzNow.UnixMilli()}
}

func TestParseSupport(t *testing.T) {
	_, key := seedKey()
	for _, tc := range []struct {
		name string
		edit func(*wire.Support)
		want string // "" accepted, else a part of the error
	}{
		{"valid", func(*wire.Support) {}, ""},
		{"version", func(s *wire.Support) { s.V = 2 }, "version"},
		{"swarm", func(s *wire.Support) { s.Swarm = "Team" }, "swarm"},
		{"short hash", func(s *wire.Support) { s.Head.Hash = "abc" }, "hash"},
		{"upper-case hash", func(s *wire.Support) { s.Head.Hash = strings.ToUpper(seedHash) }, "hash"},
		{"candidate not a key", func(s *wire.Support) { s.Candidate = "b.test" }, "candidate"},
		{"candidate padded", func(s *wire.Support) { s.Candidate = key + "=" }, "candidate"},
		{"no time", func(s *wire.Support) { s.Time = 0 }, "time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seedSupport()
			tc.edit(&s)
			b, _ := json.Marshal(s)
			_, err := wire.ParseSupport(b)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	if _, err := wire.ParseSupport([]byte(`{"v":1,"swarm":"f4eeqcbnhdcy3fkb6hc235s5","extra":1}`)); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}

func TestSettingsSuccession(t *testing.T) {
	_, key := seedKey()
	many := make([]string, wire.MaxDeputies+1)
	for i := range many {
		many[i] = key
	}
	for _, tc := range []struct {
		name string
		set  wire.Settings
		ok   bool
	}{
		{"none", wire.Settings{Name: "team"}, true},
		{"one deputy, a second", wire.Settings{Name: "team", Deputies: []string{key}, After: 1000}, true},
		{"under a second", wire.Settings{Name: "team", After: 999}, false},
		{"negative", wire.Settings{Name: "team", After: -1}, false},
		{"over a year", wire.Settings{Name: "team", After: int64(wire.MaxSuccessionAfter/time.Millisecond) + 1}, false},
		{"twice", wire.Settings{Name: "team", Deputies: []string{key, key}}, false},
		{"not a key", wire.Settings{Name: "team", Deputies: []string{"b.test"}}, false},
		{"too many", wire.Settings{Name: "team", Deputies: many}, false},
	} {
		if err := tc.set.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if d := (&wire.Settings{}).SuccessionAfter(); d != 72*time.Hour {
		t.Fatalf("default delay %s, want 72h", d)
	}
}

func TestSupportOnlyInItsPlaces(t *testing.T) {
	priv, key := seedKey()
	st := wire.Sign(wire.PurposeSupport, key, priv, []byte(`{}`))
	m := seedMessage()
	m.Support = &st
	if err := m.Check(fuzzNow, wire.DefaultWindow); err == nil {
		t.Fatal("a plain message carried a statement")
	}
	m.Type, m.Event = wire.TypeSystem, wire.EventSupport
	if err := m.Check(fuzzNow, wire.DefaultWindow); err != nil {
		t.Fatalf("a support message was refused: %v", err)
	}
	m.Support = nil
	if err := m.Check(fuzzNow, wire.DefaultWindow); err == nil {
		t.Fatal("a support message without its statement was accepted")
	}
	rec := wire.Record{V: 1, Swarm: "f4eeqcbnhdcy3fkb6hc235s5", Index: 3, Prev: seedHash, Type: wire.RecSettings,
		Time: 1, Settings: &wire.Settings{Name: "team"}, Support: []wire.Signed{st}}
	if err := rec.Check(); err == nil {
		t.Fatal("a settings record carried statements")
	}
	rec.Type, rec.Settings, rec.Agent = wire.RecSuccession, nil, "b.test"
	if err := rec.Check(); err != nil {
		t.Fatalf("a succession record was refused: %v", err)
	}
	rec.Support = nil
	if err := rec.Check(); err == nil {
		t.Fatal("a succession record without statements was accepted")
	}
}

// FuzzParseSupport: a statement is peer input (inside a support message,
// and inside succession records from the log).
func FuzzParseSupport(f *testing.F) {
	b, _ := json.Marshal(seedSupport())
	f.Add(b)
	f.Add([]byte(`{"v":1,"swarm":"f4eeqcbnhdcy3fkb6hc235s5"}`))
	f.Add([]byte(`{"v":1,"head":{"index":1,"hash":"x"},"HEAD":{}}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		s, err := wire.ParseSupport(payload)
		if err != nil {
			return
		}
		if len(s.Head.Hash) != 64 || s.Time <= 0 {
			t.Fatalf("accepted %+v", s)
		}
		again, _ := json.Marshal(s)
		s2, err := wire.ParseSupport(again)
		if err != nil || *s2 != *s {
			t.Fatalf("accepted statement does not survive a round trip: %v", err)
		}
	})
}
