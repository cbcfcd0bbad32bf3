package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/ops"
)

// TestExitCodesDocumented: docs/cli.md and the README show the exit code
// table the CLI uses, row by row.
func TestExitCodesDocumented(t *testing.T) {
	for _, doc := range []string{"docs/cli.md", "README.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exitCodes {
			if row := fmt.Sprintf("| %d | `%s` |", c.Code, c.Name); !bytes.Contains(b, []byte(row)) {
				t.Errorf("%s has no row %q", doc, row)
			}
		}
	}
}

// TestExitCodeOfEachKind: every kind of error gets its row, whether it
// is wrapped or came back from the daemon's local API.
func TestExitCodeOfEachKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		name string
	}{
		{usagef("unknown flag"), 2, "invalid"},
		{node.Userf("not the master"), 2, "invalid"},
		{node.NotFoundf("unknown swarm"), 3, "not_found"},
		{fmt.Errorf("send: %w", node.NotFoundf("unknown swarm")), 3, "not_found"},
		{&node.UserError{Msg: "from the daemon", Kind: node.Unreachable}, 4, "unreachable"},
		{node.Refusedf("the master refused"), 5, "refused"},
		{errors.New("disk full"), 1, "fault"},
	} {
		var out bytes.Buffer
		if code := fail(&out, c.err, true); code != c.code || !strings.Contains(out.String(), `"code":"`+c.name+`"`) {
			t.Errorf("%v: exit %d, %s; want %d %s", c.err, code, out.String(), c.code, c.name)
		}
	}
}

// TestEveryOpHasACommand: each operation of the table is a command whose
// help (by -h and by `swarm help`) shows its path, its arguments and its
// flags.
func TestEveryOpHasACommand(t *testing.T) {
	home := t.TempDir()
	for _, op := range ops.All() {
		words := strings.Fields(op.CLI)
		var viaHelp, viaFlag bytes.Buffer
		if code := run(append([]string{"--home", home, "help"}, words...), strings.NewReader(""), &viaHelp, os.Stderr); code != 0 {
			t.Errorf("swarm help %s: exit %d", op.CLI, code)
			continue
		}
		if code := run(append(append([]string{"--home", home}, words...), "-h"), strings.NewReader(""), &viaFlag, os.Stderr); code != 0 || viaFlag.String() != viaHelp.String() {
			t.Errorf("swarm %s -h: exit %d, output differs from swarm help %s", op.CLI, code, op.CLI)
		}
		help := viaHelp.String()
		if !strings.Contains(help, "swarm "+op.CLI) {
			t.Errorf("help of %s has no usage line:\n%s", op.CLI, help)
		}
		for _, p := range op.Params {
			want := "--" + flagName(p)
			if p.Positional {
				want = strings.ToUpper(p.Name)
			}
			if !strings.Contains(help, want) {
				t.Errorf("help of %s does not show %s:\n%s", op.CLI, want, help)
			}
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("help wrote into the home: %v", entries)
	}
}
