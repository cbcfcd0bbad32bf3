package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitAdvertise(t *testing.T) {
	for _, c := range []struct {
		name, domain, listen, advertise string
		wantAdv, wantErr                string
	}{
		{name: "loopback listen is advertised", domain: "a.test", listen: "127.0.0.1:7443", wantAdv: "127.0.0.1:7443"},
		{name: "unspecified v4 needs advertise", domain: "a.test", listen: "0.0.0.0:7443", wantErr: `--listen "0.0.0.0:7443" binds every interface`},
		{name: "unspecified v6 needs advertise", domain: "a.test", listen: "[::]:7443", wantErr: "add --advertise HOST:PORT"},
		{name: "empty host needs advertise, naming --listen", domain: "a.test", listen: ":7443", wantErr: `--listen ":7443" binds every interface`},
		{name: "unspecified with advertise", domain: "a.example.com", listen: ":7443", advertise: "203.0.113.7:7443", wantAdv: "203.0.113.7:7443"},
		{name: "advertise unspecified refused even when given", domain: "a.test", listen: ":7443", advertise: "0.0.0.0:7443", wantErr: "no host peers can reach"},
		{name: "bad port", domain: "a.test", listen: "127.0.0.1:99999", wantErr: "invalid --listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "h")
			cfg, err := Init(home, InitOptions{Domain: c.domain, Listen: c.listen, Advertise: c.advertise})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !IsUser(err) {
					t.Fatalf("err = %v, want a user error containing %q", err, c.wantErr)
				}
				if _, serr := os.Stat(filepath.Join(home, ConfigFile)); serr == nil {
					t.Fatal("config written despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Advertise != c.wantAdv {
				t.Fatalf("advertise %q, want %q", cfg.Advertise, c.wantAdv)
			}
		})
	}
}

func TestAdvertiseNote(t *testing.T) {
	for _, c := range []struct {
		domain, adv string
		note        bool
	}{
		{"my-agent.example.com", "127.0.0.1:7443", true},
		{"my-agent.example.com", "[::1]:7443", true},
		{"my-agent.example.com", "localhost:7443", true},
		{"a.test", "127.0.0.1:7443", false},
		{"my-agent.example.com", "203.0.113.7:7443", false},
		{"my-agent.example.com", "https://my-agent.example.com", false},
	} {
		got := AdvertiseNote(c.domain, c.adv)
		if (got != "") != c.note {
			t.Errorf("AdvertiseNote(%s, %s) = %q, want a note: %v", c.domain, c.adv, got, c.note)
		}
		if c.note && !strings.Contains(got, "swarm config set advertise") {
			t.Errorf("note does not say how to fix it: %q", got)
		}
	}
}

func TestConfigSetGet(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if _, err := Init(home, InitOptions{Domain: "a.test", Listen: "127.0.0.1:7443"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, value, want, wantErr string }{
		{key: "heartbeat", value: "2s", want: "2s"},
		{key: "heartbeat", value: "-2s", wantErr: "want a positive duration"},
		{key: "heartbeat", value: "soon", wantErr: "want a positive duration"},
		{key: "join_rate", value: "0.25", want: "0.25"},
		{key: "join_rate", value: "NaN", wantErr: "want a positive number"},
		{key: "quota_sender", value: "1048576", want: "1048576"},
		{key: "quota_sender", value: "1.5", wantErr: "want a whole number"},
		{key: "join_burst", value: "0", wantErr: "want a whole number"},
		{key: "listen", value: "0.0.0.0:7444", want: "0.0.0.0:7444"},
		{key: "listen", value: "nonsense", wantErr: "want host:port"},
		{key: "advertise", value: "198.51.100.2:7444", want: "198.51.100.2:7444"},
		{key: "advertise", value: ":7444", wantErr: "no host peers can reach"},
		{key: "advertise", value: "[::]:7444", wantErr: "no host peers can reach"},
		{key: "advertise", value: "", wantErr: "give a value"},
		{key: "domain", value: "b.test", wantErr: "unknown config key \"domain\": want one of listen, advertise, heartbeat"},
	} {
		e, err := ConfigSet(home, c.key, c.value)
		if c.wantErr != "" {
			if err == nil || !IsUser(err) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("set %s %q: err %v, want a user error with %q", c.key, c.value, err, c.wantErr)
			}
			continue
		}
		if err != nil || e.Value != c.want {
			t.Errorf("set %s %q: %+v, %v; want %q", c.key, c.value, e, err, c.want)
			continue
		}
		got, err := ConfigGet(home, c.key)
		if err != nil || len(got) != 1 || got[0].Value != c.want || got[0].Default {
			t.Errorf("get %s after set: %+v, %v", c.key, got, err)
		}
	}
	// Refused values left the file as the last good set made it.
	cfg, err := LoadConfig(home)
	if err != nil || cfg.Advertise != "198.51.100.2:7444" || cfg.Listen != "0.0.0.0:7444" || cfg.JoinBurst != 0 {
		t.Fatalf("config after refusals: %+v, %v", cfg, err)
	}
	all, err := ConfigGet(home, "")
	if err != nil || len(all) != len(ConfigKeys()) {
		t.Fatalf("get all: %d entries, %v", len(all), err)
	}
	for _, e := range all {
		if e.Key == "retry_max" && (e.Value != "30s" || !e.Default) {
			t.Errorf("an unset key shows its default: %+v", e)
		}
	}
}

func TestConfigSetBehindAngie(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if _, err := Init(home, InitOptions{Domain: "a.example.com", Angie: &AngieSettings{}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, value, wantErr string }{
		{"listen", "0.0.0.0:7080", "loopback host:port"},
		{"advertise", "203.0.113.7:443", "https://DOMAIN"},
		{"listen", "127.0.0.1:7081", ""},
	} {
		_, err := ConfigSet(home, c.key, c.value)
		if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("set %s %s: %v, want %q", c.key, c.value, err, c.wantErr)
		}
	}
}

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Kind
	}{
		{Userf("x"), Invalid},
		{NotFoundf("x"), NotFound},
		{Unreachablef("x"), Unreachable},
		{Refusedf("x"), Refused},
		{os.ErrNotExist, ""},
		{&UserError{Msg: "from the local API", Kind: "something-new"}, Invalid},
	} {
		if got := KindOf(c.err); got != c.want || IsUser(c.err) != (c.want != "") {
			t.Errorf("KindOf(%v) = %q (user %v), want %q", c.err, got, IsUser(c.err), c.want)
		}
	}
}
