package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the swarm binary: scripts run
// `swarm …` as a separate process, exactly as a user does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) != "swarm" {
		// Tests run the node in the command's process unless they ask
		// for the daemon (owner tests): no background process outlives
		// them. Not for `swarm` itself, which the owner tests run with
		// the opt-out unset.
		os.Setenv("SWARM_NO_DAEMON", "1")
	}
	testscript.Main(m, map[string]func(){
		"swarm": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/*.txtar end to end.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SWARM_HOME", "") // only --home
			// No daemon starts behind a script's back; owner.txtar
			// unsets this to test the daemon's auto-start.
			env.Setenv("SWARM_NO_DAEMON", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeport":   cmdFreePort,
			"waitfile":   cmdWaitFile,
			"fastconfig": cmdFastConfig,
			"setfile":    cmdSetFile,
			"retry":      cmdRetry,
			"jsonlen":    cmdJSONLen,
			"jsonfield":  cmdJSONField,
			"sendmany":   cmdSendMany,
			"httpget":    cmdHTTPGet,
		},
	})
}

// freeport VAR: sets VAR to a UDP port free on 127.0.0.1.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	p, err := freePort()
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(p))
}

// waitfile PATH: waits (at most 20 s) until PATH exists, e.g. serve.ready.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastconfig HOME: short timers so scripts converge quickly.
func cmdFastConfig(ts *testscript.TestScript, neg bool, args []string) {
	p := filepath.Join(ts.MkAbs(args[0]), "config.json")
	var cfg map[string]any
	b, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(json.Unmarshal(b, &cfg))
	cfg["heartbeat"], cfg["retry_min"], cfg["retry_max"], cfg["sync_every"] = "200ms", "20ms", "300ms", "300ms"
	cfg["join_rate"], cfg["join_burst"] = 100, 100
	b, _ = json.Marshal(cfg)
	ts.Check(os.WriteFile(p, b, 0o600))
}

// setfile VAR FILE: sets VAR to FILE's trimmed contents (e.g. a token).
func cmdSetFile(ts *testscript.TestScript, neg bool, args []string) {
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// retry [-match RE] swarm ARGS...: reruns the command (at most 15 s) until
// it succeeds and its stdout matches RE. Stdout is left for later checks.
func cmdRetry(ts *testscript.TestScript, neg bool, args []string) {
	var re *regexp.Regexp
	if len(args) > 2 && args[0] == "-match" {
		re = regexp.MustCompile(args[1])
		args = args[2:]
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ts.Exec(args[0], args[1:]...)
		out := ts.ReadFile("stdout")
		if err == nil && (re == nil || re.MatchString(out)) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("retry %v: last error %v, stdout:\n%s\nstderr:\n%s", args, err, out, ts.ReadFile("stderr"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsonlen N: stdout is a JSON array of length N.
func cmdJSONLen(ts *testscript.TestScript, neg bool, args []string) {
	var v []any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	if want, _ := strconv.Atoi(args[0]); (len(v) == want) == neg {
		ts.Fatalf("stdout has %d elements, want %s%d", len(v), map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// jsonfield VAR KEY: sets VAR to the string field KEY of the JSON object on
// stdout (of an array of objects: of its last one).
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	var v map[string]any
	out := []byte(ts.ReadFile("stdout"))
	var list []map[string]any
	if json.Unmarshal(out, &list) == nil && len(list) > 0 {
		v = list[len(list)-1]
	} else {
		ts.Check(json.Unmarshal(out, &v))
	}
	ts.Setenv(args[0], fmt.Sprint(v[args[1]]))
}

// sendmany HOME SWARM N: N sends through the CLI, each of which must
// return success (the daemon has the message durably).
func cmdSendMany(ts *testscript.TestScript, neg bool, args []string) {
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	for i := 0; i < n; i++ {
		ts.Check(ts.Exec("swarm", "--home", args[0], "send", "--swarm", args[1], fmt.Sprintf("durable %d", i)))
	}
}

// httpget URL: a plain HTTP GET (what Angie's proxy_pass does to a node
// behind it); the body goes to stdout. Retries for up to 10 s while the
// server comes up; a non-2xx status fails unless negated.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(args[0])
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ts.Stdout().Write(b)
			if ok := resp.StatusCode/100 == 2; ok == neg {
				ts.Fatalf("GET %s: %d %s", args[0], resp.StatusCode, b)
			}
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("GET %s: %v", args[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
